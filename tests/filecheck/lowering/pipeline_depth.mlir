// RUN: qir-opt %s -p 'qir-infer-widths,qir-lower-cmvm,qir-pipeline{max-depth=1}' | filecheck %s --check-prefix=D1
// RUN: qir-opt %s -p 'qir-infer-widths,qir-lower-cmvm,qir-pipeline{latency=2}' | filecheck %s --check-prefix=L2

// Adder levels: nodes 2 and 3 at depth 1, node 4 at depth 2, the offset add of output 0 one
// more.  One level per stage puts node 4 in stage 1 and the outputs in stage 2; a 2-cycle
// target allows two levels per stage.  The output register ends the last stage either way.
qir.model @small {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.cmvm %0 matrix(dense<[[3, 1], [-5, 4]]> : tensor<2x2xi32>) offset(dense<[7, 0]> : tensor<2xi32>) shift 2 : i32 style "cmvm" {layer = "fc1"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<13,6>>
  qir.output %1 : tensor<2x!qir.fixed<13,6>>
}
// D1:       %1 = qir.addergraph %0 {{.*}} stages(dense<[0, 0, 1, 2, 2]> : tensor<5xi32>) latency 2 : i32
// D1-NEXT:  %2 = qir.reg %1 stage 3 : i32
// D1-NEXT:  qir.output %2
// L2:       %1 = qir.addergraph %0 {{.*}} stages(dense<[0, 0, 0, 1, 1]> : tensor<5xi32>) latency 1 : i32
// L2-NEXT:  %2 = qir.reg %1 stage 2 : i32
// L2-NEXT:  qir.output %2
