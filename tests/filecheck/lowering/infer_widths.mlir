// RUN: qir-opt %s --split-input-file -p qir-infer-widths | filecheck %s

// Over-wide dense results shrink to the exact interval of x @ W + b over the input type's range;
// relu follows its input; quantize results are explicit and stay.
qir.model @chain {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[1, -2], [3, 4]]> : tensor<2x2xi32> : !qir.fixed<4,1>) bias(dense<[1, 2]> : tensor<2xi32> : !qir.fixed<4,1>) {layer = "fc1"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<24,10>>
  %2 = qir.relu %1 {layer = "relu1"} : tensor<2x!qir.fixed<24,10>>
  %3 = qir.quantize %2 rounding "rnd_conv" overflow "sat" {layer = "relu1"} : tensor<2x!qir.fixed<24,10>> -> tensor<2x!qir.ufixed<6,0>>
  %4 = qir.dense %3 weights(dense<[[1], [1]]> : tensor<2x1xi32> : !qir.fixed<4,1>) {layer = "fc2"} : tensor<2x!qir.ufixed<6,0>> -> tensor<1x!qir.fixed<32,16>>
  qir.output %4 : tensor<1x!qir.fixed<32,16>>
}
// CHECK-LABEL: qir.model @chain
// CHECK:       %1 = qir.dense %0 {{.*}} -> tensor<2x!qir.fixed<11,3>>
// CHECK-NEXT:  %2 = qir.relu %1 {layer = "relu1"} : tensor<2x!qir.fixed<11,3>>
// CHECK-NEXT:  %3 = qir.quantize %2 {{.*}} : tensor<2x!qir.fixed<11,3>> -> tensor<2x!qir.ufixed<6,0>>
// Non-negative results become unsigned: 2 * 63 * 2^-6 * 2^-3 = 126 * 2^-9 fits ufixed<7,-2>.
// CHECK-NEXT:  %4 = qir.dense %3 {{.*}} -> tensor<1x!qir.ufixed<7,-2>>
// CHECK-NEXT:  qir.output %4 : tensor<1x!qir.ufixed<7,-2>>

// -----

// Corner: min * min.  The bias is finer than the products, so the products are aligned to it.
qir.model @corner {
  %0 = qir.input "x" : tensor<1x!qir.fixed<4,4>>
  %1 = qir.dense %0 weights(dense<[[-8]]> : tensor<1x1xi32> : !qir.fixed<4,1>) bias(dense<-1> : tensor<1xi32> : !qir.fixed<8,0>) : tensor<1x!qir.fixed<4,4>> -> tensor<1x!qir.fixed<40,20>>
  qir.output %1 : tensor<1x!qir.fixed<40,20>>
}
// x in [-8, 7], w = -1: x*w in [-7, 8] (min*min is the maximum); bias -2^-8: results
// [-7 - 2^-8, 8 - 2^-8] = [-1793, 2047] * 2^-8, exactly 12 signed bits.
// CHECK-LABEL: qir.model @corner
// CHECK:       %1 = qir.dense %0 {{.*}} -> tensor<1x!qir.fixed<12,4>>

// -----

// cmvm results are inferred the same way (frac = input frac + shift).
qir.model @cmvm {
  %0 = qir.input "x" : tensor<2x!qir.ufixed<4,0>>
  %1 = qir.cmvm %0 matrix(dense<[[3], [-5]]> : tensor<2x1xi32>) offset(dense<7> : tensor<1xi32>) shift 2 : i32 style "mac" : tensor<2x!qir.ufixed<4,0>> -> tensor<1x!qir.fixed<30,24>>
  qir.output %1 : tensor<1x!qir.fixed<30,24>>
}
// [0*3 + 15*-5 + 7, 15*3 + 0 + 7] = [-68, 52]: fixed<8,2> with 6 frac bits.
// CHECK-LABEL: qir.model @cmvm
// CHECK:       %1 = qir.cmvm %0 {{.*}} -> tensor<1x!qir.fixed<8,2>>

// -----

// Spatial ops: conv results are the union over output positions of the per-channel dot-product
// bounds, counting only the taps a window actually sees; max pool, reshape, transpose and pad
// follow their input; average pool is (count * input range) * multiplier.
qir.model @cnn {
  %0 = qir.input "x" : tensor<1x1x1x!qir.fixed<4,4>>
  %1 = qir.conv %0 weights(dense<-8> : tensor<3x3x1x2xi32> : !qir.fixed<4,4>) strides [1, 1] dilations [1, 1] pads [1, 1, 1, 1] groups 1 {layer = "c"} : tensor<1x1x1x!qir.fixed<4,4>> -> tensor<1x1x2x!qir.fixed<40,20>>
  %2 = qir.pool %1 kind "max" window [1, 1] strides [1, 1] pads [0, 0, 0, 0] : tensor<1x1x2x!qir.fixed<40,20>> -> tensor<1x1x2x!qir.fixed<40,20>>
  %3 = qir.reshape %2 : tensor<1x1x2x!qir.fixed<40,20>> -> tensor<2x!qir.fixed<40,20>>
  qir.output %3 : tensor<2x!qir.fixed<40,20>>
}
// A 1x1 input with pads 1 meets only the centre tap: (-8) * [-8, 7] = [-56, 64], not nine times that.
// CHECK-LABEL: qir.model @cnn
// CHECK:       %1 = qir.conv %0 {{.*}} -> tensor<1x1x2x!qir.fixed<8,8>>
// CHECK-NEXT:  %2 = qir.pool %1 kind "max" {{.*}} : tensor<1x1x2x!qir.fixed<8,8>> -> tensor<1x1x2x!qir.fixed<8,8>>
// CHECK-NEXT:  %3 = qir.reshape %2 : tensor<1x1x2x!qir.fixed<8,8>> -> tensor<2x!qir.fixed<8,8>>

// -----

// Depthwise conv with bias finer than the products (weights aligned to the bias), strides 2.
qir.model @depthwise {
  %0 = qir.input "x" : tensor<4x4x2x!qir.ufixed<4,0>>
  %1 = qir.conv %0 weights(dense<[[[[1, -1]], [[2, -2]]], [[[3, -3]], [[4, -4]]]]> : tensor<2x2x1x2xi32> : !qir.fixed<4,1>) bias(dense<[1, -1]> : tensor<2xi32> : !qir.fixed<4,-4>) strides [2, 2] dilations [1, 1] pads [0, 0, 0, 0] groups 2 : tensor<4x4x2x!qir.ufixed<4,0>> -> tensor<2x2x2x!qir.fixed<60,30>>
  qir.output %1 : tensor<2x2x2x!qir.fixed<60,30>>
}
// Channel 0: x in [0, 15/16], sum w = 10/8: [0, 150/128] + 2^-8; channel 1: [-150/128, 0] - 2^-8.
// 8 fractional bits: [-301, 301] -> fixed<10,2>.
// CHECK-LABEL: qir.model @depthwise
// CHECK:       %1 = qir.conv %0 {{.*}} -> tensor<2x2x2x!qir.fixed<10,2>>

// -----

// Average pool with valid-count multipliers ~ 1/k: a full window (2 elements) uses 0.5, the border
// window (1 element, 1 pad) uses 1.0.
qir.model @avgpool {
  %0 = qir.input "x" : tensor<3x1x!qir.fixed<4,4>>
  %1 = qir.pool %0 kind "avg" window [2] strides [2] pads [0, 1] count "valid" multiplier(dense<[4, 2]> : tensor<2xi32> : !qir.ufixed<3,1>) : tensor<3x1x!qir.fixed<4,4>> -> tensor<2x1x!qir.fixed<40,20>>
  qir.output %1 : tensor<2x1x!qir.fixed<40,20>>
}
// 2 * [-8, 7] * 0.5 and 1 * [-8, 7] * 1.0 are both [-8, 7] at 2 fractional bits -> fixed<6,4>
// (not the 2 * [-8, 7] * 1.0 of the largest count times the largest multiplier).
// CHECK-LABEL: qir.model @avgpool
// CHECK:       %1 = qir.pool %0 {{.*}} -> tensor<2x1x!qir.fixed<6,4>>

// -----

// Elementwise: scale, leaky_relu, add, concat get exact types; transpose, pad follow; lut stays.
qir.model @elementwise {
  %0 = qir.input "x" : tensor<2x3x!qir.fixed<4,1>>
  %1 = qir.input "y" : tensor<2x3x!qir.ufixed<3,3>>
  %2 = qir.scale %0 scale(dense<[-4, 1, 2]> : tensor<3xi32> : !qir.fixed<3,1>) bias(dense<1> : tensor<1xi32> : !qir.fixed<2,0>) : tensor<2x3x!qir.fixed<4,1>> -> tensor<2x3x!qir.fixed<40,20>>
  %3 = qir.leaky_relu %0 alpha(dense<[1, 3, 2]> : tensor<3xi32> : !qir.ufixed<2,0>) : tensor<2x3x!qir.fixed<4,1>> -> tensor<2x3x!qir.fixed<40,20>>
  %4 = qir.add %0, %1, %0 : tensor<2x3x!qir.fixed<4,1>>, tensor<2x3x!qir.ufixed<3,3>>, tensor<2x3x!qir.fixed<4,1>> -> tensor<2x3x!qir.fixed<40,20>>
  %5 = qir.concat %0, %1 axis 0 : tensor<2x3x!qir.fixed<4,1>>, tensor<2x3x!qir.ufixed<3,3>> -> tensor<4x3x!qir.fixed<40,20>>
  %6 = qir.transpose %5 perm [1, 0] : tensor<4x3x!qir.fixed<40,20>> -> tensor<3x4x!qir.fixed<40,20>>
  %7 = qir.pad %6 pads [0, 1, 1, 0] : tensor<3x4x!qir.fixed<40,20>> -> tensor<4x5x!qir.fixed<40,20>>
  %8 = qir.lut %1 table(dense<[0, 1, 2, 3, 4, 5, 6, 7]> : tensor<8xi32>) : tensor<2x3x!qir.ufixed<3,3>> -> tensor<2x3x!qir.fixed<20,10>>
  qir.output %2, %3, %4, %7, %8 : tensor<2x3x!qir.fixed<40,20>>, tensor<2x3x!qir.fixed<40,20>>, tensor<2x3x!qir.fixed<40,20>>, tensor<4x5x!qir.fixed<40,20>>, tensor<2x3x!qir.fixed<20,10>>
}
// scale: x in [-1, 0.875] * {-1, 0.25, 0.5} + 0.25 at 5 fractional bits: [-0.625, 1.25], the
// maximum from min * min.
// CHECK-LABEL: qir.model @elementwise
// CHECK:       %2 = qir.scale %0 {{.*}} -> tensor<2x3x!qir.fixed<7,2>>
// leaky_relu: negative side x * {0.25, 0.75, 0.5} >= -0.75, positive side up to 0.875, 5 frac bits.
// CHECK-NEXT:  %3 = qir.leaky_relu %0 {{.*}} -> tensor<2x3x!qir.fixed<6,1>>
// add: [-1, 0.875] * 2 + [0, 7] = [-2, 8.75] at 3 fractional bits.
// CHECK-NEXT:  %4 = qir.add %0, %1, %0 {{.*}} -> tensor<2x3x!qir.fixed<8,5>>
// concat: [-1, 0.875] and [0, 7] on one grid: [-8, 56] eighths -> fixed<7,4>.
// CHECK-NEXT:  %5 = qir.concat %0, %1 axis 0 {{.*}} -> tensor<4x3x!qir.fixed<7,4>>
// CHECK-NEXT:  %6 = qir.transpose %5 perm [1, 0] : tensor<4x3x!qir.fixed<7,4>> -> tensor<3x4x!qir.fixed<7,4>>
// CHECK-NEXT:  %7 = qir.pad %6 pads [0, 1, 1, 0] : tensor<3x4x!qir.fixed<7,4>> -> tensor<4x5x!qir.fixed<7,4>>
// CHECK-NEXT:  %8 = qir.lut %1 {{.*}} -> tensor<2x3x!qir.fixed<20,10>>

// -----

// qir.mul: product of the two ranges at the sum of the fracs; qir.reduce sum: n times the
// input range; maxabs: [0, max |x|] unsigned; max keeps the input type.
qir.model @mul_reduce {
  %0 = qir.input "x" : tensor<4x!qir.fixed<4,1>>
  %1 = qir.reduce %0 kind "sum" axis 0 : tensor<4x!qir.fixed<4,1>> -> tensor<1x!qir.fixed<32,16>>
  %2 = qir.reduce %0 kind "maxabs" axis 0 : tensor<4x!qir.fixed<4,1>> -> tensor<1x!qir.fixed<32,16>>
  %3 = qir.reduce %0 kind "max" axis 0 : tensor<4x!qir.fixed<4,1>> -> tensor<1x!qir.fixed<4,1>>
  %4 = qir.mul %0, %2 : tensor<4x!qir.fixed<4,1>>, tensor<1x!qir.fixed<32,16>> -> tensor<4x!qir.fixed<60,30>>
  %5 = qir.mul %0, %0 : tensor<4x!qir.fixed<4,1>>, tensor<4x!qir.fixed<4,1>> -> tensor<4x!qir.fixed<60,30>>
  qir.output %1, %3, %4, %5 : tensor<1x!qir.fixed<32,16>>, tensor<1x!qir.fixed<4,1>>, tensor<4x!qir.fixed<60,30>>, tensor<4x!qir.fixed<60,30>>
}
// x in [-8, 7] * 2^-3: the sum of 4 is [-32, 28] * 2^-3 (fixed<6,3>); max |x| = 8 * 2^-3 (ufixed<4,1>);
// x * (ufixed<4,1> range [0, 15]) in [-120, 105] * 2^-6 (fixed<8,2>: the verifier uses the
// operand types' ranges); x * x in [-56, 64] * 2^-6 (fixed<8,2>).
// CHECK-LABEL: qir.model @mul_reduce
// CHECK:       %1 = qir.reduce %0 kind "sum" axis 0 : tensor<4x!qir.fixed<4,1>> -> tensor<1x!qir.fixed<6,3>>
// CHECK-NEXT:  %2 = qir.reduce %0 kind "maxabs" axis 0 : tensor<4x!qir.fixed<4,1>> -> tensor<1x!qir.ufixed<4,1>>
// CHECK-NEXT:  %3 = qir.reduce %0 kind "max" axis 0 : tensor<4x!qir.fixed<4,1>> -> tensor<1x!qir.fixed<4,1>>
// CHECK-NEXT:  %4 = qir.mul %0, %2 : tensor<4x!qir.fixed<4,1>>, tensor<1x!qir.ufixed<4,1>> -> tensor<4x!qir.fixed<8,2>>
// CHECK-NEXT:  %5 = qir.mul %0, %0 : tensor<4x!qir.fixed<4,1>>, tensor<4x!qir.fixed<4,1>> -> tensor<4x!qir.fixed<8,2>>
