// RUN: qir-opt %s --split-input-file --verify-diagnostics | filecheck %s
// Verifier errors of the spatial, elementwise and shape ops.

// Full 2x2 window of (-1) * (-1): 4.0 needs fixed<10,4> at 6 fractional bits.
qir.model @conv_narrow {
  %0 = qir.input "x" : tensor<3x3x1x!qir.fixed<4,1>>
  %1 = qir.conv %0 weights(dense<-8> : tensor<2x2x1x1xi32> : !qir.fixed<4,1>) strides [1, 1] dilations [1, 1] pads [0, 0, 0, 0] groups 1 {layer = "c"} : tensor<3x3x1x!qir.fixed<4,1>> -> tensor<2x2x1x!qir.fixed<9,3>>
  qir.output %1 : tensor<2x2x1x!qir.fixed<9,3>>
}
// CHECK: layer 'c': result type fixed<9,3> cannot hold the exact results [-3.5, 4.0]; it needs at least fixed<10,4> (run qir-infer-widths)

// -----

qir.model @conv_frac {
  %0 = qir.input "x" : tensor<3x3x1x!qir.fixed<4,1>>
  %1 = qir.conv %0 weights(dense<-8> : tensor<2x2x1x1xi32> : !qir.fixed<4,1>) bias(dense<1> : tensor<1xi32> : !qir.fixed<9,1>) strides [1, 1] dilations [1, 1] pads [0, 0, 0, 0] groups 1 {layer = "c"} : tensor<3x3x1x!qir.fixed<4,1>> -> tensor<2x2x1x!qir.fixed<20,13>>
  qir.output %1 : tensor<2x2x1x!qir.fixed<20,13>>
}
// CHECK: layer 'c': result type fixed<20,13> has 7 fractional bits but the exact result needs 8; run qir-infer-widths or quantize explicitly with qir.quantize

// -----

qir.model @conv_groups {
  %0 = qir.input "x" : tensor<3x3x4x!qir.fixed<4,1>>
  %1 = qir.conv %0 weights(dense<1> : tensor<1x1x2x3xi32> : !qir.fixed<4,1>) strides [1, 1] dilations [1, 1] pads [0, 0, 0, 0] groups 2 {layer = "c"} : tensor<3x3x4x!qir.fixed<4,1>> -> tensor<3x3x3x!qir.fixed<20,10>>
  qir.output %1 : tensor<3x3x3x!qir.fixed<20,10>>
}
// CHECK: layer 'c': groups 2 does not fit 4 input channels, weights shape (1, 1, 2, 3)

// -----

qir.model @conv_shape {
  %0 = qir.input "x" : tensor<5x5x1x!qir.fixed<4,1>>
  %1 = qir.conv %0 weights(dense<1> : tensor<3x3x1x2xi32> : !qir.fixed<4,1>) strides [2, 2] dilations [1, 1] pads [1, 1, 1, 1] groups 1 {layer = "c"} : tensor<5x5x1x!qir.fixed<4,1>> -> tensor<2x2x2x!qir.fixed<20,10>>
  qir.output %1 : tensor<2x2x2x!qir.fixed<20,10>>
}
// CHECK: layer 'c': result shape (2, 2, 2) != expected (3, 3, 2)

// -----

qir.model @conv_pads {
  %0 = qir.input "x" : tensor<5x5x1x!qir.fixed<4,1>>
  %1 = qir.conv %0 weights(dense<1> : tensor<3x3x1x2xi32> : !qir.fixed<4,1>) strides [1, 1] dilations [1, 1] pads [1, 1] groups 1 {layer = "c"} : tensor<5x5x1x!qir.fixed<4,1>> -> tensor<5x5x2x!qir.fixed<20,10>>
  qir.output %1 : tensor<5x5x2x!qir.fixed<20,10>>
}
// CHECK: layer 'c': 2 spatial dims need 2 kernel sizes, 2 strides, 2 dilations and 4 pads, got 2, 2, 2 and 2

// -----

qir.model @conv_weights {
  %0 = qir.input "x" : tensor<4x1x!qir.fixed<4,1>>
  %1 = qir.conv %0 weights(dense<[[[9]], [[1]]]> : tensor<2x1x1xi32> : !qir.fixed<4,1>) strides [1] dilations [1] pads [0, 0] groups 1 {layer = "c"} : tensor<4x1x!qir.fixed<4,1>> -> tensor<3x1x!qir.fixed<20,10>>
  qir.output %1 : tensor<3x1x!qir.fixed<20,10>>
}
// CHECK: layer 'c' weights: mantissas [1, 9] do not fit fixed<4,1> [-8, 7]

// -----

qir.model @maxpool_type {
  %0 = qir.input "x" : tensor<4x4x1x!qir.fixed<4,1>>
  %1 = qir.pool %0 kind "max" window [2, 2] strides [2, 2] pads [0, 0, 0, 0] {layer = "p"} : tensor<4x4x1x!qir.fixed<4,1>> -> tensor<2x2x1x!qir.fixed<5,2>>
  qir.output %1 : tensor<2x2x1x!qir.fixed<5,2>>
}
// CHECK: layer 'p': result element type fixed<5,2> must equal the input's fixed<4,1>

// -----

qir.model @pool_all_padding {
  %0 = qir.input "x" : tensor<2x2x1x!qir.fixed<4,1>>
  %1 = qir.pool %0 kind "max" window [2, 2] strides [1, 1] pads [2, 0, 0, 0] {layer = "p"} : tensor<2x2x1x!qir.fixed<4,1>> -> tensor<3x1x1x!qir.fixed<4,1>>
  qir.output %1 : tensor<3x1x1x!qir.fixed<4,1>>
}
// CHECK: layer 'p': a pooling window lies entirely in the padding; pads must be smaller than the window

// -----

qir.model @avgpool_no_multiplier {
  %0 = qir.input "x" : tensor<4x4x1x!qir.fixed<4,1>>
  %1 = qir.pool %0 kind "avg" window [2, 2] strides [2, 2] pads [0, 0, 0, 0] {layer = "p"} : tensor<4x4x1x!qir.fixed<4,1>> -> tensor<2x2x1x!qir.fixed<4,1>>
  qir.output %1 : tensor<2x2x1x!qir.fixed<4,1>>
}
// CHECK: layer 'p': average pooling needs count and multiplier

// -----

qir.model @avgpool_multiplier_shape {
  %0 = qir.input "x" : tensor<4x4x1x!qir.fixed<4,1>>
  %1 = qir.pool %0 kind "avg" window [2, 2] strides [2, 2] pads [0, 0, 1, 1] count "valid" multiplier(dense<64> : tensor<1xi32> : !qir.ufixed<8,0>) {layer = "p"} : tensor<4x4x1x!qir.fixed<4,1>> -> tensor<2x2x1x!qir.fixed<20,8>>
  qir.output %1 : tensor<2x2x1x!qir.fixed<20,8>>
}
// CHECK: layer 'p': count 'valid' needs a multiplier of shape (4,), got (1,)

// -----

qir.model @pool_kind {
  %0 = qir.input "x" : tensor<4x4x1x!qir.fixed<4,1>>
  %1 = qir.pool %0 kind "min" window [2, 2] strides [2, 2] pads [0, 0, 0, 0] {layer = "p"} : tensor<4x4x1x!qir.fixed<4,1>> -> tensor<2x2x1x!qir.fixed<4,1>>
  qir.output %1 : tensor<2x2x1x!qir.fixed<4,1>>
}
// CHECK: layer 'p': kind 'min' is not one of max, avg

// -----

// 4 * -1.0 * 0.25 = -1.0 at 5 fractional bits.
qir.model @avgpool_narrow {
  %0 = qir.input "x" : tensor<4x4x1x!qir.fixed<4,1>>
  %1 = qir.pool %0 kind "avg" window [2, 2] strides [2, 2] pads [0, 0, 0, 0] count "window" multiplier(dense<1> : tensor<1xi32> : !qir.ufixed<2,0>) {layer = "p"} : tensor<4x4x1x!qir.fixed<4,1>> -> tensor<2x2x1x!qir.fixed<5,0>>
  qir.output %1 : tensor<2x2x1x!qir.fixed<5,0>>
}
// CHECK: layer 'p': result type fixed<5,0> cannot hold the exact results [-1.0, 0.875]; it needs at least fixed<6,1> (run qir-infer-widths)

// -----

qir.model @scale_shape {
  %0 = qir.input "x" : tensor<2x3x!qir.fixed<4,1>>
  %1 = qir.scale %0 scale(dense<[1, 2]> : tensor<2xi32> : !qir.fixed<4,1>) {layer = "bn"} : tensor<2x3x!qir.fixed<4,1>> -> tensor<2x3x!qir.fixed<20,10>>
  qir.output %1 : tensor<2x3x!qir.fixed<20,10>>
}
// CHECK: layer 'bn': scale shape (2,) must be (3,) or (1,)

// -----

qir.model @scale_empty {
  %0 = qir.input "x" : tensor<3x!qir.fixed<4,1>>
  %1 = qir.scale %0 {layer = "bn"} : tensor<3x!qir.fixed<4,1>> -> tensor<3x!qir.fixed<4,1>>
  qir.output %1 : tensor<3x!qir.fixed<4,1>>
}
// CHECK: layer 'bn': qir.scale needs a scale, a bias or both

// -----

// min * min: -1.0 * -1.0 = 1.0 does not fit fixed<6,1>.
qir.model @scale_narrow {
  %0 = qir.input "x" : tensor<3x!qir.fixed<4,1>>
  %1 = qir.scale %0 scale(dense<-4> : tensor<1xi32> : !qir.fixed<3,1>) {layer = "bn"} : tensor<3x!qir.fixed<4,1>> -> tensor<3x!qir.fixed<6,1>>
  qir.output %1 : tensor<3x!qir.fixed<6,1>>
}
// CHECK: layer 'bn': result type fixed<6,1> cannot hold the exact results [-0.875, 1.0]; it needs at least fixed<7,2> (run qir-infer-widths)

// -----

qir.model @leaky_narrow {
  %0 = qir.input "x" : tensor<3x!qir.fixed<4,1>>
  %1 = qir.leaky_relu %0 alpha(dense<1> : tensor<1xi32> : !qir.ufixed<2,0>) {layer = "lr"} : tensor<3x!qir.fixed<4,1>> -> tensor<3x!qir.fixed<4,1>>
  qir.output %1 : tensor<3x!qir.fixed<4,1>>
}
// CHECK: layer 'lr': result type fixed<4,1> has 3 fractional bits but the exact result needs 5; run qir-infer-widths or quantize explicitly with qir.quantize

// -----

qir.model @add_shape {
  %0 = qir.input "x" : tensor<3x!qir.fixed<4,1>>
  %1 = qir.input "y" : tensor<2x!qir.fixed<4,1>>
  %2 = qir.add %0, %1 {layer = "add"} : tensor<3x!qir.fixed<4,1>>, tensor<2x!qir.fixed<4,1>> -> tensor<3x!qir.fixed<5,2>>
  qir.output %2 : tensor<3x!qir.fixed<5,2>>
}
// CHECK: layer 'add': input 1 shape (2,) != result shape (3,)

// -----

qir.model @add_one {
  %0 = qir.input "x" : tensor<3x!qir.fixed<4,1>>
  %1 = qir.add %0 {layer = "add"} : tensor<3x!qir.fixed<4,1>> -> tensor<3x!qir.fixed<4,1>>
  qir.output %1 : tensor<3x!qir.fixed<4,1>>
}
// CHECK: layer 'add': qir.add needs at least two inputs

// -----

// -1.0 + -4.0 = -5.0 needs 4 integer bits.
qir.model @add_narrow {
  %0 = qir.input "x" : tensor<3x!qir.fixed<4,1>>
  %1 = qir.input "y" : tensor<3x!qir.fixed<3,3>>
  %2 = qir.add %0, %1 {layer = "add"} : tensor<3x!qir.fixed<4,1>>, tensor<3x!qir.fixed<3,3>> -> tensor<3x!qir.fixed<6,3>>
  qir.output %2 : tensor<3x!qir.fixed<6,3>>
}
// CHECK: layer 'add': result type fixed<6,3> cannot hold the exact results [-5.0, 3.875]; it needs at least fixed<7,4> (run qir-infer-widths)

// -----

qir.model @concat_frac {
  %0 = qir.input "x" : tensor<3x!qir.fixed<4,1>>
  %1 = qir.input "y" : tensor<2x!qir.ufixed<4,4>>
  %2 = qir.concat %0, %1 axis 0 {layer = "cat"} : tensor<3x!qir.fixed<4,1>>, tensor<2x!qir.ufixed<4,4>> -> tensor<5x!qir.fixed<6,5>>
  qir.output %2 : tensor<5x!qir.fixed<6,5>>
}
// CHECK: layer 'cat': result type fixed<6,5> has 1 fractional bits but the exact result needs 3; run qir-infer-widths or quantize explicitly with qir.quantize

// -----

qir.model @concat_range {
  %0 = qir.input "x" : tensor<3x!qir.fixed<4,1>>
  %1 = qir.input "y" : tensor<2x!qir.ufixed<4,4>>
  %2 = qir.concat %0, %1 axis 0 {layer = "cat"} : tensor<3x!qir.fixed<4,1>>, tensor<2x!qir.ufixed<4,4>> -> tensor<5x!qir.fixed<7,4>>
  qir.output %2 : tensor<5x!qir.fixed<7,4>>
}
// CHECK: layer 'cat': result type fixed<7,4> cannot hold the exact results [-1.0, 15.0]; it needs at least fixed<8,5> (run qir-infer-widths)

// -----

qir.model @concat_sizes {
  %0 = qir.input "x" : tensor<2x3x!qir.fixed<4,1>>
  %1 = qir.concat %0, %0 axis 1 {layer = "cat"} : tensor<2x3x!qir.fixed<4,1>>, tensor<2x3x!qir.fixed<4,1>> -> tensor<2x5x!qir.fixed<4,1>>
  qir.output %1 : tensor<2x5x!qir.fixed<4,1>>
}
// CHECK: layer 'cat': inputs give 6 along axis 1, result has 5

// -----

qir.model @reshape_count {
  %0 = qir.input "x" : tensor<2x3x!qir.fixed<4,1>>
  %1 = qir.reshape %0 {layer = "flatten"} : tensor<2x3x!qir.fixed<4,1>> -> tensor<5x!qir.fixed<4,1>>
  qir.output %1 : tensor<5x!qir.fixed<4,1>>
}
// CHECK: layer 'flatten': cannot reshape (2, 3) (6 elements) to (5,) (5 elements)

// -----

qir.model @reshape_type {
  %0 = qir.input "x" : tensor<2x3x!qir.fixed<4,1>>
  %1 = qir.reshape %0 {layer = "flatten"} : tensor<2x3x!qir.fixed<4,1>> -> tensor<6x!qir.fixed<5,2>>
  qir.output %1 : tensor<6x!qir.fixed<5,2>>
}
// CHECK: layer 'flatten': result element type fixed<5,2> must equal the input's fixed<4,1>

// -----

qir.model @transpose_perm {
  %0 = qir.input "x" : tensor<2x3x4x!qir.fixed<4,1>>
  %1 = qir.transpose %0 perm [0, 2, 2] {layer = "t"} : tensor<2x3x4x!qir.fixed<4,1>> -> tensor<2x4x4x!qir.fixed<4,1>>
  qir.output %1 : tensor<2x4x4x!qir.fixed<4,1>>
}
// CHECK: layer 't': perm [0, 2, 2] is not a permutation of 0..2

// -----

qir.model @transpose_shape {
  %0 = qir.input "x" : tensor<2x3x4x!qir.fixed<4,1>>
  %1 = qir.transpose %0 perm [1, 2, 0] {layer = "t"} : tensor<2x3x4x!qir.fixed<4,1>> -> tensor<4x3x2x!qir.fixed<4,1>>
  qir.output %1 : tensor<4x3x2x!qir.fixed<4,1>>
}
// CHECK: layer 't': result shape (4, 3, 2) != (3, 4, 2) (input permuted)

// -----

qir.model @pad_shape {
  %0 = qir.input "x" : tensor<2x3x!qir.fixed<4,1>>
  %1 = qir.pad %0 pads [1, 0, 1, 0] {layer = "zp"} : tensor<2x3x!qir.fixed<4,1>> -> tensor<4x4x!qir.fixed<4,1>>
  qir.output %1 : tensor<4x4x!qir.fixed<4,1>>
}
// CHECK: layer 'zp': result shape (4, 4) != padded shape (4, 3)

// -----

qir.model @lut_wide {
  %0 = qir.input "x" : tensor<2x!qir.fixed<17,1>>
  %1 = qir.lut %0 table(dense<0> : tensor<131072xi32>) {layer = "act"} : tensor<2x!qir.fixed<17,1>> -> tensor<2x!qir.fixed<4,1>>
  qir.output %1 : tensor<2x!qir.fixed<4,1>>
}
// CHECK: layer 'act': input type fixed<17,1> is wider than the 16 bits a table can index; quantize the input first

// -----

qir.model @lut_size {
  %0 = qir.input "x" : tensor<2x!qir.fixed<3,1>>
  %1 = qir.lut %0 table(dense<[0, 1, 2, 3]> : tensor<4xi32>) {layer = "act"} : tensor<2x!qir.fixed<3,1>> -> tensor<2x!qir.fixed<4,1>>
  qir.output %1 : tensor<2x!qir.fixed<4,1>>
}
// CHECK: layer 'act': table shape (4,) != (8,) for input fixed<3,1>

// -----

qir.model @lut_values {
  %0 = qir.input "x" : tensor<2x!qir.fixed<2,1>>
  %1 = qir.lut %0 table(dense<[0, 1, 2, 8]> : tensor<4xi32>) {layer = "act"} : tensor<2x!qir.fixed<2,1>> -> tensor<2x!qir.fixed<4,1>>
  qir.output %1 : tensor<2x!qir.fixed<4,1>>
}
// CHECK: layer 'act' table: mantissas [0, 8] do not fit fixed<4,1> [-8, 7]

// -----

qir.model @steps_order {
  %0 = qir.input "x" : tensor<2x!qir.fixed<20,4>>
  %1 = qir.steps %0 thresholds(dense<[182, 91]> : tensor<2xi32>) values(dense<[1, 2, 4]> : tensor<3xi32>) {layer = "act"} : tensor<2x!qir.fixed<20,4>> -> tensor<2x!qir.ufixed<5,2>>
  qir.output %1 : tensor<2x!qir.ufixed<5,2>>
}
// CHECK: layer 'act': thresholds must ascend strictly within (-524288, 524287] (input mantissas of fixed<20,4>)

// -----

qir.model @steps_count {
  %0 = qir.input "x" : tensor<2x!qir.fixed<20,4>>
  %1 = qir.steps %0 thresholds(dense<[91, 182]> : tensor<2xi32>) values(dense<[1, 2]> : tensor<2xi32>) {layer = "act"} : tensor<2x!qir.fixed<20,4>> -> tensor<2x!qir.ufixed<5,2>>
  qir.output %1 : tensor<2x!qir.ufixed<5,2>>
}
// CHECK: layer 'act': qir.steps needs K thresholds and K + 1 values, got (2,) / (2,)
