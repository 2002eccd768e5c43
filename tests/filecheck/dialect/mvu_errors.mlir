// RUN: qir-opt %s --split-input-file --verify-diagnostics | filecheck %s
// Verifier errors of the reuse attribute (qir.dense, qir.conv) and of qir.mvu.

qir.model @zero {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[1], [2]]> : tensor<2x1xi32> : !qir.fixed<4,1>) {layer = "fc", reuse = 0 : i64} : tensor<2x!qir.fixed<8,3>> -> tensor<1x!qir.fixed<11,4>>
  qir.output %1 : tensor<1x!qir.fixed<11,4>>
}
// CHECK: layer 'fc': reuse must be an integer >= 1 (write reuse = 4 : i64), got 0 : i64

// -----

qir.model @text {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[1], [2]]> : tensor<2x1xi32> : !qir.fixed<4,1>) {layer = "fc", reuse = "4"} : tensor<2x!qir.fixed<8,3>> -> tensor<1x!qir.fixed<11,4>>
  qir.output %1 : tensor<1x!qir.fixed<11,4>>
}
// CHECK: layer 'fc': reuse must be an integer >= 1 (write reuse = 4 : i64), got "4"

// -----

qir.model @conv {
  %0 = qir.input "x" : tensor<4x1x!qir.fixed<8,3>>
  %1 = qir.conv %0 weights(dense<[[[1]], [[2]]]> : tensor<2x1x1xi32> : !qir.fixed<4,1>) strides [1] dilations [1] pads [0, 0] groups 1 {layer = "c", reuse = -2 : i64} : tensor<4x1x!qir.fixed<8,3>> -> tensor<3x1x!qir.fixed<11,4>>
  qir.output %1 : tensor<3x1x!qir.fixed<11,4>>
}
// CHECK: layer 'c': reuse must be an integer >= 1 (write reuse = 4 : i64), got -2 : i64

// -----

qir.model @style {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.mvu %0 matrix(dense<[[1], [2]]> : tensor<2x1xi32>) offset(dense<0> : tensor<1xi32>) shift 0 : i32 style "cmvm" reuse 2 : i64 impl "rom" {layer = "fc"} : tensor<2x!qir.fixed<8,3>> -> tensor<1x!qir.fixed<11,4>>
  qir.output %1 : tensor<1x!qir.fixed<11,4>>
}
// CHECK: layer 'fc': style 'cmvm' is not one of mac, po2, ternary (a folded xnor layer is a qir.xnor with reuse)

// -----

qir.model @reuse {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.mvu %0 matrix(dense<[[1], [2]]> : tensor<2x1xi32>) offset(dense<0> : tensor<1xi32>) shift 0 : i32 style "mac" reuse 0 : i64 impl "rom" {layer = "fc"} : tensor<2x!qir.fixed<8,3>> -> tensor<1x!qir.fixed<11,4>>
  qir.output %1 : tensor<1x!qir.fixed<11,4>>
}
// CHECK: layer 'fc': reuse must be an integer >= 1, got 0

// -----

qir.model @po2 {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.mvu %0 matrix(dense<[[1], [3]]> : tensor<2x1xi32>) offset(dense<0> : tensor<1xi32>) shift 0 : i32 style "po2" reuse 2 : i64 impl "rom" {layer = "fc"} : tensor<2x!qir.fixed<8,3>> -> tensor<1x!qir.fixed<12,5>>
  qir.output %1 : tensor<1x!qir.fixed<12,5>>
}
// CHECK: layer 'fc': style 'po2' needs weights 0 or +-2^k

// -----

qir.model @narrow {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.mvu %0 matrix(dense<[[1], [2]]> : tensor<2x1xi32>) offset(dense<0> : tensor<1xi32>) shift 0 : i32 style "mac" reuse 2 : i64 impl "rom" {layer = "fc"} : tensor<2x!qir.fixed<8,3>> -> tensor<1x!qir.fixed<9,4>>
  qir.output %1 : tensor<1x!qir.fixed<9,4>>
}
// CHECK: layer 'fc':
