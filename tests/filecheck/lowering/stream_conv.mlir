// RUN: qir-opt %s -p qir-stream-conv | filecheck %s

// A 3x3 same-padded conv with a relu: window (zero fill) + one map whose body is the 9 -> 2
// kernel as a dense on one beat, the relu moved into the body.
qir.model @c {
  %0 = qir.input "x" : tensor<4x4x1x!qir.fixed<6,3>>
  %1 = qir.conv %0 weights(dense<[[[[1, 0]], [[2, 1]], [[0, 1]]], [[[1, 1]], [[-1, 2]], [[0, 0]]], [[[3, 1]], [[1, -1]], [[2, 2]]]]> : tensor<3x3x1x2xi32> : !qir.fixed<4,2>) strides [1, 1] dilations [1, 1] pads [1, 1, 1, 1] groups 1 {layer = "c1"} : tensor<4x4x1x!qir.fixed<6,3>> -> tensor<4x4x2x!qir.fixed<12,7>>
  %2 = qir.relu %1 {layer = "c1"} : tensor<4x4x2x!qir.fixed<12,7>>
  qir.output %2 : tensor<4x4x2x!qir.fixed<12,7>>
}
// CHECK:      %1 = qir.window %0 window [3, 3] strides [1, 1] dilations [1, 1] pads [1, 1, 1, 1] fill 0 {layer = "c1"} : tensor<4x4x1x!qir.fixed<6,3>> -> tensor<4x4x9x!qir.fixed<6,3>>
// CHECK-NEXT: %2 = qir.map %1 {layer = "c1"} : tensor<4x4x9x!qir.fixed<6,3>> -> tensor<4x4x2x!qir.fixed<12,7>> {
// CHECK-NEXT:   qir.model @c1_kernel {
// CHECK-NEXT:     %3 = qir.input "beat" {layer = "c1"} : tensor<9x!qir.fixed<6,3>>
// CHECK-NEXT:     %4 = qir.dense %3 weights(dense<{{\[\[}}1, 0], [2, 1], [0, 1], [1, 1], [-1, 2], [0, 0], [3, 1], [1, -1], [2, 2]]> : tensor<9x2xi32> : !qir.fixed<4,2>) {layer = "c1"} : tensor<9x!qir.fixed<6,3>> -> tensor<2x!qir.fixed<10,5>>
// CHECK-NEXT:     %5 = qir.quantize %4 rounding "trn" overflow "wrap" {layer = "c1"} : tensor<2x!qir.fixed<10,5>> -> tensor<2x!qir.fixed<12,7>>
// CHECK-NEXT:     %6 = qir.relu %5 {layer = "c1"} : tensor<2x!qir.fixed<12,7>>
// CHECK-NEXT:     qir.output %6 : tensor<2x!qir.fixed<12,7>>
// CHECK:      qir.output %2 : tensor<4x4x2x!qir.fixed<12,7>>
