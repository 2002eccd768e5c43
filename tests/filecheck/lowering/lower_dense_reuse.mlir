// RUN: qir-opt %s --split-input-file -p 'qir-lower-dense{style=auto}' | filecheck %s
// A reuse = R attribute (issue #12) folds the layer: qir.mvu (the qir.cmvm numbers, over R cycles)
// or a qir.xnor with reuse R; without it (or R = 1) the layer is lowered as before.

// General weights in style mac (multipliers): folded from a weight ROM (the automatic style's
// choice between rom and muxgraph is lower_dense_muxgraph.mlir).
qir.model @mac {
  %0 = qir.input "x" : tensor<3x!qir.fixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[1, -2], [3, 4], [5, 7]]> : tensor<3x2xi32> : !qir.fixed<4,1>) bias(dense<[1, 2]> : tensor<2xi32> : !qir.fixed<4,1>) {layer = "fc1", reuse = 2 : i64, style = "mac"} : tensor<3x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<12,4>>
  qir.output %1 : tensor<2x!qir.fixed<12,4>>
}
// CHECK-LABEL: qir.model @mac
// CHECK:       %1 = qir.mvu %0 matrix(dense<{{\[\[}}1, -2], [3, 4], [5, 7]]> : tensor<3x2xi32>) offset(dense<[32, 64]> : tensor<2xi32>) shift 3 : i32 style "mac" reuse 2 : i64 impl "rom" {layer = "fc1"} : tensor<3x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<12,4>>

// -----

// Weights 0 or +-2^k: po2 (shift-add units); a non-divisor R (5 cycles for 3 inputs) is kept.
qir.model @po2 {
  %0 = qir.input "x" : tensor<3x!qir.fixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[1, -2], [0, 4], [-4, 1]]> : tensor<3x2xi32> : !qir.fixed<4,3>) {impl = "rom", layer = "fc", reuse = 5 : i64} : tensor<3x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<14,8>>
  qir.output %1 : tensor<2x!qir.fixed<14,8>>
}
// CHECK-LABEL: qir.model @po2
// CHECK:       qir.mvu %0 matrix({{.*}}) offset(dense<0> : tensor<2xi32>) shift 1 : i32 style "po2" reuse 5 : i64 impl "rom" {layer = "fc"}

// -----

// A two-valued input and +-a weights: a folded qir.xnor (reuse on the popcount), then the scale.
qir.model @xnor {
  %0 = qir.input "x" : tensor<3x!qir.ufixed<1,1>>
  %1 = qir.dense %0 weights(dense<[[2, -1], [-2, -1], [2, 1]]> : tensor<3x2xi32> : !qir.fixed<3,2>) bias(dense<[1, -3]> : tensor<2xi32> : !qir.fixed<4,3>) {layer = "fc", reuse = 2 : i64} : tensor<3x!qir.ufixed<1,1>> -> tensor<2x!qir.fixed<5,4>>
  qir.output %1 : tensor<2x!qir.fixed<5,4>>
}
// CHECK-LABEL: qir.model @xnor
// CHECK:       %1 = qir.xnor %0 weights(dense<{{\[\[}}1, 0, 1], [0, 0, 1]]> : tensor<2x3xi32>) one 1 zero 0 reuse 2 : i64 {layer = "fc"} : tensor<3x!qir.ufixed<1,1>> -> tensor<2x!qir.ufixed<2,2>>
// CHECK-NEXT:  %2 = qir.scale %1

// -----

// reuse = 1 is the unfolded layer.
qir.model @one {
  %0 = qir.input "x" : tensor<3x!qir.fixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[1, -2], [3, 4], [5, 7]]> : tensor<3x2xi32> : !qir.fixed<4,1>) {layer = "fc1", reuse = 1 : i64} : tensor<3x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<12,4>>
  qir.output %1 : tensor<2x!qir.fixed<12,4>>
}
// CHECK-LABEL: qir.model @one
// CHECK:       qir.cmvm %0
// CHECK-NOT:   qir.mvu
