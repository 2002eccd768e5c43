// RUN: qir-opt %s --split-input-file --verify-diagnostics | filecheck %s

qir.model @narrow {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[1, -2], [3, 4]]> : tensor<2x2xi32> : !qir.fixed<4,1>) {layer = "fc1"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<9,1>>
  qir.output %1 : tensor<2x!qir.fixed<9,1>>
}
// CHECK: layer 'fc1': result type fixed<9,1> cannot hold the exact results [-2.9921875, 2.984375]; it needs at least fixed<11,3> (run qir-infer-widths)

// -----

qir.model @coarse {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[1, -2], [3, 4]]> : tensor<2x2xi32> : !qir.fixed<4,1>) {layer = "fc1"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<16,14>>
  qir.output %1 : tensor<2x!qir.fixed<16,14>>
}
// CHECK: layer 'fc1': result type fixed<16,14> has 2 fractional bits but the exact result needs 8

// -----

qir.model @weights_range {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[1, -2], [3, 9]]> : tensor<2x2xi32> : !qir.fixed<4,1>) {layer = "fc1"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<16,6>>
  qir.output %1 : tensor<2x!qir.fixed<16,6>>
}
// CHECK: layer 'fc1' weights: mantissas [-2, 9] do not fit fixed<4,1> [-8, 7]

// -----

qir.model @shape {
  %0 = qir.input "x" : tensor<3x!qir.fixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[1, -2], [3, 4]]> : tensor<2x2xi32> : !qir.fixed<4,1>) {layer = "fc1"} : tensor<3x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<16,6>>
  qir.output %1 : tensor<2x!qir.fixed<16,6>>
}
// CHECK: layer 'fc1': weights shape (2, 2) != (3, 2)

// -----

qir.model @rounding {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.quantize %0 rounding "nearest" overflow "sat" {layer = "q"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<4,3>>
  qir.output %1 : tensor<2x!qir.fixed<4,3>>
}
// CHECK: layer 'q': rounding 'nearest' is not one of trn, trn_zero, rnd, rnd_zero, rnd_inf, rnd_min_inf, rnd_conv

// -----

qir.model @overflow {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.quantize %0 rounding "trn" overflow "clamp" : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<4,3>>
  qir.output %1 : tensor<2x!qir.fixed<4,3>>
}
// CHECK: 'qir.quantize': overflow 'clamp' is not one of wrap, sat, sat_zero, sat_sym

// -----

qir.model @noout {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.relu %0 : tensor<2x!qir.fixed<8,3>>
}
// CHECK: qir.model @noout must end with qir.output

// -----

qir.model @zero_width {
  %0 = qir.input "x" : tensor<2x!qir.fixed<0,3>>
  qir.output %0 : tensor<2x!qir.fixed<0,3>>
}
// CHECK: qir.fixed: width must be between 1 and 1024, got 0

// -----

qir.model @cmvm_frac {
  %0 = qir.input "x" : tensor<1x!qir.fixed<8,3>>
  %1 = qir.cmvm %0 matrix(dense<[[3]]> : tensor<1x1xi32>) offset(dense<0> : tensor<1xi32>) shift 1 : i32 style "mac" {layer = "fc"} : tensor<1x!qir.fixed<8,3>> -> tensor<1x!qir.fixed<12,7>>
  qir.output %1 : tensor<1x!qir.fixed<12,7>>
}
// CHECK: layer 'fc': result must have exactly 6 fractional bits, has 5

// -----

qir.model @cmvm_style {
  %0 = qir.input "x" : tensor<1x!qir.fixed<8,3>>
  %1 = qir.cmvm %0 matrix(dense<[[3]]> : tensor<1x1xi32>) offset(dense<0> : tensor<1xi32>) shift 0 : i32 style "magic" {layer = "fc"} : tensor<1x!qir.fixed<8,3>> -> tensor<1x!qir.fixed<12,7>>
  qir.output %1 : tensor<1x!qir.fixed<12,7>>
}
// CHECK: layer 'fc': style 'magic' is not one of mac
