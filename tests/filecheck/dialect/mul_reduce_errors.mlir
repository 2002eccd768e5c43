// RUN: qir-opt %s --split-input-file --verify-diagnostics | filecheck %s
// Verifier errors of qir.mul and qir.reduce.

// (-128) * (-128) * 2^-10 = 16.0 needs fixed<16,6>.
qir.model @mul_narrow {
  %0 = qir.input "x" : tensor<3x!qir.fixed<8,3>>
  %1 = qir.mul %0, %0 {layer = "p"} : tensor<3x!qir.fixed<8,3>>, tensor<3x!qir.fixed<8,3>> -> tensor<3x!qir.fixed<15,5>>
  qir.output %1 : tensor<3x!qir.fixed<15,5>>
}
// CHECK: layer 'p': result type fixed<15,5> cannot hold the exact results [-15.875, 16.0]; it needs at least fixed<16,6> (run qir-infer-widths)

// -----

qir.model @mul_frac {
  %0 = qir.input "x" : tensor<3x!qir.ufixed<4,0>>
  %1 = qir.mul %0, %0 {layer = "p"} : tensor<3x!qir.ufixed<4,0>>, tensor<3x!qir.ufixed<4,0>> -> tensor<3x!qir.ufixed<7,0>>
  qir.output %1 : tensor<3x!qir.ufixed<7,0>>
}
// CHECK: layer 'p': result type ufixed<7,0> has 7 fractional bits but the exact result needs 8; run qir-infer-widths or quantize explicitly with qir.quantize

// -----

qir.model @mul_broadcast {
  %0 = qir.input "x" : tensor<2x3x!qir.ufixed<4,0>>
  %1 = qir.input "y" : tensor<2x!qir.ufixed<4,0>>
  %2 = qir.mul %0, %1 {layer = "p"} : tensor<2x3x!qir.ufixed<4,0>>, tensor<2x!qir.ufixed<4,0>> -> tensor<2x3x!qir.ufixed<8,0>>
  qir.output %2 : tensor<2x3x!qir.ufixed<8,0>>
}
// CHECK: layer 'p': second input shape (2,) does not broadcast to (2, 3) (right-aligned, each axis equal or 1)

// -----

qir.model @mul_shape {
  %0 = qir.input "x" : tensor<3x!qir.ufixed<4,0>>
  %1 = qir.mul %0, %0 {layer = "p"} : tensor<3x!qir.ufixed<4,0>>, tensor<3x!qir.ufixed<4,0>> -> tensor<1x!qir.ufixed<8,0>>
  qir.output %1 : tensor<1x!qir.ufixed<8,0>>
}
// CHECK: layer 'p': result shape (1,) != first input shape (3,)

// -----

// Four elements of up to 15/16 sum to 3.75: ufixed<5,1> is too narrow.
qir.model @sum_narrow {
  %0 = qir.input "x" : tensor<4x!qir.ufixed<4,0>>
  %1 = qir.reduce %0 kind "sum" axis 0 {layer = "s"} : tensor<4x!qir.ufixed<4,0>> -> tensor<1x!qir.ufixed<5,1>>
  qir.output %1 : tensor<1x!qir.ufixed<5,1>>
}
// CHECK: layer 's': result type ufixed<5,1> cannot hold the exact results [0.0, 3.75]; it needs at least ufixed<6,2> (run qir-infer-widths)

// -----

qir.model @max_type {
  %0 = qir.input "x" : tensor<4x!qir.fixed<4,1>>
  %1 = qir.reduce %0 kind "max" axis 0 {layer = "m"} : tensor<4x!qir.fixed<4,1>> -> tensor<1x!qir.fixed<5,2>>
  qir.output %1 : tensor<1x!qir.fixed<5,2>>
}
// CHECK: layer 'm': result element type fixed<5,2> must equal the input's fixed<4,1>

// -----

// max |fixed<4,1>| is 1.0 = 8 * 2^-3, which needs ufixed<4,1>.
qir.model @maxabs_narrow {
  %0 = qir.input "x" : tensor<4x!qir.fixed<4,1>>
  %1 = qir.reduce %0 kind "maxabs" axis 0 {layer = "a"} : tensor<4x!qir.fixed<4,1>> -> tensor<1x!qir.ufixed<3,0>>
  qir.output %1 : tensor<1x!qir.ufixed<3,0>>
}
// CHECK: layer 'a': result type ufixed<3,0> cannot hold the exact results [0.0, 1.0]; it needs at least ufixed<4,1> (run qir-infer-widths)

// -----

qir.model @reduce_shape {
  %0 = qir.input "x" : tensor<2x4x!qir.fixed<4,1>>
  %1 = qir.reduce %0 kind "max" axis 1 {layer = "m"} : tensor<2x4x!qir.fixed<4,1>> -> tensor<2x!qir.fixed<4,1>>
  qir.output %1 : tensor<2x!qir.fixed<4,1>>
}
// CHECK: layer 'm': result shape (2,) != (2, 1) (the reduced axis is kept with size 1)

// -----

qir.model @reduce_axis {
  %0 = qir.input "x" : tensor<4x!qir.fixed<4,1>>
  %1 = qir.reduce %0 kind "max" axis 1 {layer = "m"} : tensor<4x!qir.fixed<4,1>> -> tensor<4x!qir.fixed<4,1>>
  qir.output %1 : tensor<4x!qir.fixed<4,1>>
}
// CHECK: layer 'm': axis 1 out of range for rank 1

// -----

qir.model @reduce_kind {
  %0 = qir.input "x" : tensor<4x!qir.fixed<4,1>>
  %1 = qir.reduce %0 kind "min" axis 0 {layer = "m"} : tensor<4x!qir.fixed<4,1>> -> tensor<1x!qir.fixed<4,1>>
  qir.output %1 : tensor<1x!qir.fixed<4,1>>
}
// CHECK: layer 'm': kind 'min' is not one of sum, max, maxabs
