// RUN: qir-opt %s --split-input-file -p 'qir-lower-conv{style=mac}' | filecheck %s
// RUN: qir-opt %s --split-input-file -p 'qir-lower-conv' | filecheck %s --check-prefix=AUTO

// A 1-D conv with a begin pad: the flattened matrix has entry [p*s - pb + t, p] = w[t] on the
// result grid (2^-4 products, result 2^-6: x4), the bias (2^0) on every position (1 << 6); the
// padded tap of position 0 is missing.  The quantize/relu chain moves before the closing reshape.
qir.model @conv {
  %0 = qir.input "x" : tensor<3x1x!qir.fixed<4,2>>
  %1 = qir.conv %0 weights(dense<[[[2]], [[-3]]]> : tensor<2x1x1xi32> : !qir.fixed<4,2>) bias(dense<1> : tensor<1xi32> : !qir.fixed<4,4>) strides [1] dilations [1] pads [1, 0] groups 1 {layer = "c"} : tensor<3x1x!qir.fixed<4,2>> -> tensor<3x1x!qir.fixed<12,6>>
  %2 = qir.quantize %1 rounding "rnd" overflow "sat" {layer = "c"} : tensor<3x1x!qir.fixed<12,6>> -> tensor<3x1x!qir.fixed<6,4>>
  %3 = qir.relu %2 {layer = "c"} : tensor<3x1x!qir.fixed<6,4>>
  qir.output %3 : tensor<3x1x!qir.fixed<6,4>>
}
// CHECK-LABEL: qir.model @conv
// CHECK:       %1 = qir.reshape %0 {layer = "c"} : tensor<3x1x!qir.fixed<4,2>> -> tensor<3x!qir.fixed<4,2>>
// CHECK-NEXT:  %2 = qir.cmvm %1 matrix(dense<{{\[\[}}-12, 8, 0], [0, -12, 8], [0, 0, -12]]> : tensor<3x3xi32>) offset(dense<64> : tensor<3xi32>) shift 4 : i32 style "mac" {layer = "c"} : tensor<3x!qir.fixed<4,2>> -> tensor<3x!qir.fixed<12,6>>
// CHECK-NEXT:  %3 = qir.quantize %2 rounding "rnd" overflow "sat" {layer = "c"} : tensor<3x!qir.fixed<12,6>> -> tensor<3x!qir.fixed<6,4>>
// CHECK-NEXT:  %4 = qir.relu %3 {layer = "c"} : tensor<3x!qir.fixed<6,4>>
// CHECK-NEXT:  %5 = qir.reshape %4 {layer = "c"} : tensor<3x!qir.fixed<6,4>> -> tensor<3x1x!qir.fixed<6,4>>
// CHECK-NEXT:  qir.output %5
// CHECK-NOT:   qir.conv
// AUTO-LABEL:  qir.model @conv
// AUTO:        style "cmvm"

// -----

// Average pool, count "valid": windows of 2 elements get multiplier[1], the end-padded window
// of 1 element multiplier[0]; channels stay separate.
qir.model @avg {
  %0 = qir.input "x" : tensor<3x2x!qir.ufixed<4,2>>
  %1 = qir.pool %0 kind "avg" window [2] strides [1] pads [0, 1] count "valid" multiplier(dense<[2, 1]> : tensor<2xi32> : !qir.ufixed<2,0>) {layer = "ap"} : tensor<3x2x!qir.ufixed<4,2>> -> tensor<3x2x!qir.ufixed<8,4>>
  %2 = qir.reshape %1 {layer = "fl"} : tensor<3x2x!qir.ufixed<8,4>> -> tensor<6x!qir.ufixed<8,4>>
  qir.output %2 : tensor<6x!qir.ufixed<8,4>>
}
// CHECK-LABEL: qir.model @avg
// CHECK:       qir.cmvm %1 matrix(dense<{{\[\[}}1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0], [1, 0, 1, 0, 0, 0], [0, 1, 0, 1, 0, 0], [0, 0, 1, 0, 2, 0], [0, 0, 0, 1, 0, 2]]> : tensor<6x6xi32>) offset(dense<0> : tensor<6xi32>) shift 2 : i32 style "mac" {layer = "ap"}
// CHECK-NEXT:  qir.reshape %2 {layer = "ap"} : tensor<6x!qir.ufixed<8,4>> -> tensor<3x2x!qir.ufixed<8,4>>
// CHECK-NOT:   qir.pool
// AUTO-LABEL:  qir.model @avg
// AUTO:        style "po2"

// -----

// Depthwise (groups 2): output channel o reads input channel o only.  The conv result has two
// users, so nothing is moved across the closing reshape.
qir.model @grouped {
  %0 = qir.input "x" : tensor<2x2x!qir.fixed<4,2>>
  %1 = qir.conv %0 weights(dense<[[[1, -2]]]> : tensor<1x1x2xi32> : !qir.fixed<4,2>) strides [1] dilations [1] pads [0, 0] groups 2 {layer = "dw"} : tensor<2x2x!qir.fixed<4,2>> -> tensor<2x2x!qir.fixed<10,6>>
  %2 = qir.relu %1 {layer = "dw"} : tensor<2x2x!qir.fixed<10,6>>
  %3 = qir.add %2, %1 {layer = "sum"} : tensor<2x2x!qir.fixed<10,6>>, tensor<2x2x!qir.fixed<10,6>> -> tensor<2x2x!qir.fixed<12,8>>
  qir.output %3 : tensor<2x2x!qir.fixed<12,8>>
}
// CHECK-LABEL: qir.model @grouped
// CHECK:       %2 = qir.cmvm %1 matrix(dense<{{\[\[}}1, 0, 0, 0], [0, -2, 0, 0], [0, 0, 1, 0], [0, 0, 0, -2]]> : tensor<4x4xi32>)
// CHECK-NEXT:  %3 = qir.reshape %2 {layer = "dw"} : tensor<4x!qir.fixed<10,6>> -> tensor<2x2x!qir.fixed<10,6>>
// CHECK-NEXT:  %4 = qir.relu %3 {layer = "dw"} : tensor<2x2x!qir.fixed<10,6>>
// CHECK-NEXT:  %5 = qir.add %4, %3
