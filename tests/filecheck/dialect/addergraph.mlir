// RUN: qir-opt %s | filecheck %s
// RUN: qir-opt %s --print-op-generic | qir-opt | filecheck %s
// qir.addergraph's text form round-trips (custom -> generic -> custom), with and without the
// fused epilogue; out = [x0 + 4*x1, -(x0 + 4*x1) << 1 + 3] on x in fixed<8,3>.

qir.model @ag {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.addergraph %0 nodes(dense<[[0, 0, 1, 2, 1]]> : tensor<1x5xi32>) outputs(dense<[[2, 0, 1], [2, 1, -1]]> : tensor<2x3xi32>) offset(dense<[0, 3]> : tensor<2xi32>) shift 0 : i32 style "cmvm" stages(dense<[0, 1, 1]> : tensor<3xi32>) latency 1 : i32 {layer = "fc1"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<12,7>>
  %2 = qir.addergraph %0 nodes(dense<[[0, 0, 1, 2, 1]]> : tensor<1x5xi32>) outputs(dense<[[2, 0, 1], [-1, 0, 1]]> : tensor<2x3xi32>) offset(dense<[1, -2]> : tensor<2xi32>) shift 0 : i32 style "po2" stages(dense<[0, 0, 0]> : tensor<3xi32>) latency 0 : i32 epilogue(!qir.fixed<12,7> relu true rounding "rnd_conv" overflow "sat") {layer = "fc2"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.ufixed<4,2>>
  qir.output %1, %2 : tensor<2x!qir.fixed<12,7>>, tensor<2x!qir.ufixed<4,2>>
}
// CHECK:      %1 = qir.addergraph %0 nodes(dense<{{\[\[}}0, 0, 1, 2, 1]]> : tensor<1x5xi32>) outputs(dense<{{\[\[}}2, 0, 1], [2, 1, -1]]> : tensor<2x3xi32>) offset(dense<[0, 3]> : tensor<2xi32>) shift 0 : i32 style "cmvm" stages(dense<[0, 1, 1]> : tensor<3xi32>) latency 1 : i32 {layer = "fc1"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<12,7>>
// CHECK-NEXT: %2 = qir.addergraph %0 nodes(dense<{{\[\[}}0, 0, 1, 2, 1]]> : tensor<1x5xi32>) outputs(dense<{{\[\[}}2, 0, 1], [-1, 0, 1]]> : tensor<2x3xi32>) offset(dense<[1, -2]> : tensor<2xi32>) shift 0 : i32 style "po2" stages(dense<0> : tensor<3xi32>) latency 0 : i32 epilogue(!qir.fixed<12,7> relu true rounding "rnd_conv" overflow "sat") {layer = "fc2"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.ufixed<4,2>>
