// RUN: qir-opt %s --split-input-file -p qir-pipeline | filecheck %s

// One stage per constant-matrix layer: a register where a value enters the next layer, and one
// at the output.  Elementwise ops stay in their layer's stage.
qir.model @chain {
  %0 = qir.input "x" : tensor<1x!qir.fixed<4,4>>
  %1 = qir.cmvm %0 matrix(dense<[[3]]> : tensor<1x1xi32>) offset(dense<0> : tensor<1xi32>) shift 0 : i32 style "mac" {layer = "fc1"} : tensor<1x!qir.fixed<4,4>> -> tensor<1x!qir.fixed<6,6>>
  %2 = qir.relu %1 {layer = "relu1"} : tensor<1x!qir.fixed<6,6>>
  %3 = qir.cmvm %2 matrix(dense<[[1]]> : tensor<1x1xi32>) offset(dense<0> : tensor<1xi32>) shift 0 : i32 style "mac" {layer = "fc2"} : tensor<1x!qir.fixed<6,6>> -> tensor<1x!qir.fixed<6,6>>
  qir.output %3 : tensor<1x!qir.fixed<6,6>>
}
// CHECK-LABEL: qir.model @chain
// CHECK:       %1 = qir.cmvm %0
// CHECK-NEXT:  %2 = qir.relu %1
// CHECK-NEXT:  %3 = qir.reg %2 stage 1 : i32 {layer = "relu1"}
// CHECK-NEXT:  %4 = qir.cmvm %3
// CHECK-NEXT:  %5 = qir.reg %4 stage 2 : i32 {layer = "fc2"}
// CHECK-NEXT:  qir.output %5

// -----

// No arithmetic layer: one output register (latency 1).
qir.model @elementwise {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.relu %0 : tensor<2x!qir.fixed<8,3>>
  qir.output %1 : tensor<2x!qir.fixed<8,3>>
}
// CHECK-LABEL: qir.model @elementwise
// CHECK:       %1 = qir.relu %0
// CHECK-NEXT:  %2 = qir.reg %1 stage 1 : i32
// CHECK-NEXT:  qir.output %2

// -----

// An input passed straight to the output stays combinational.
qir.model @wire {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  qir.output %0 : tensor<2x!qir.fixed<8,3>>
}
// CHECK-LABEL: qir.model @wire
// CHECK-NOT:   qir.reg
