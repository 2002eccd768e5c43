// RUN: qir-opt %s --split-input-file -p 'qir-lower-dense{style=auto}' | filecheck %s
// RUN: qir-opt %s --split-input-file -p 'qir-lower-dense{style=auto},qir-fold-threshold' | filecheck %s --check-prefix=FOLD
// RUN: not qir-opt %s --split-input-file -p 'qir-lower-dense{style=auto layers="cp:xnor"}' 2>&1 | filecheck %s --check-prefix=ERR

// Stream level: the value-set analysis looks through a map's beat input to the map's operand.
// s0 makes +-1 (a sign step per beat); the 2x2 window (no padding) only rearranges those codes,
// so the conv kernel c (weights +-1) gets xnor; its sign chain s1, the max pool's window (fill -2
// never appears: no padding) and reduce max, and the collect keep every element in {-1, 1}, so the
// dense head d after the Flatten gets xnor too.
qir.model @bcnn attributes {io = "stream"} {
  %0 = qir.input "x" : tensor<5x5x2x!qir.fixed<4,2>>
  %1 = qir.map %0 {layer = "s0"} : tensor<5x5x2x!qir.fixed<4,2>> -> tensor<5x5x2x!qir.fixed<2,2>> {
    qir.model @s0_beat {
      %2 = qir.input "beat" {layer = "s0"} : tensor<2x!qir.fixed<4,2>>
      %3 = qir.scale %2 scale(dense<1> : tensor<1xi32> : !qir.ufixed<1,4>) bias(dense<1> : tensor<1xi32> : !qir.ufixed<1,1>) {layer = "s0"} : tensor<2x!qir.fixed<4,2>> -> tensor<2x!qir.fixed<5,5>>
      %4 = qir.quantize %3 rounding "trn" overflow "sat_sym" {layer = "s0"} : tensor<2x!qir.fixed<5,5>> -> tensor<2x!qir.fixed<2,2>>
      qir.output %4 : tensor<2x!qir.fixed<2,2>>
    }
  }
  %2 = qir.window %1 window [2, 2] strides [1, 1] dilations [1, 1] pads [0, 0, 0, 0] fill 0 {layer = "c"} : tensor<5x5x2x!qir.fixed<2,2>> -> tensor<4x4x8x!qir.fixed<2,2>>
  %3 = qir.map %2 {layer = "c"} : tensor<4x4x8x!qir.fixed<2,2>> -> tensor<4x4x2x!qir.fixed<2,2>> {
    qir.model @c_kernel {
      %4 = qir.input "beat" {layer = "c"} : tensor<8x!qir.fixed<2,2>>
      %5 = qir.dense %4 weights(dense<[[1, -1], [-1, 1], [1, 1], [-1, -1], [-1, 1], [1, 1], [1, -1], [-1, 1]]> : tensor<8x2xi32> : !qir.fixed<2,2>) {layer = "c"} : tensor<8x!qir.fixed<2,2>> -> tensor<2x!qir.fixed<5,5>>
      %6 = qir.scale %5 scale(dense<1> : tensor<1xi32> : !qir.ufixed<1,4>) bias(dense<1> : tensor<1xi32> : !qir.ufixed<1,1>) {layer = "s1"} : tensor<2x!qir.fixed<5,5>> -> tensor<2x!qir.fixed<8,8>>
      %7 = qir.quantize %6 rounding "trn" overflow "sat_sym" {layer = "s1"} : tensor<2x!qir.fixed<8,8>> -> tensor<2x!qir.fixed<2,2>>
      qir.output %7 : tensor<2x!qir.fixed<2,2>>
    }
  }
  %4 = qir.window %3 window [2, 2] strides [2, 2] dilations [1, 1] pads [0, 0, 0, 0] fill -2 {layer = "p"} : tensor<4x4x2x!qir.fixed<2,2>> -> tensor<2x2x8x!qir.fixed<2,2>>
  %5 = qir.map %4 {layer = "p"} : tensor<2x2x8x!qir.fixed<2,2>> -> tensor<2x2x2x!qir.fixed<2,2>> {
    qir.model @p_max {
      %6 = qir.input "beat" {layer = "p"} : tensor<8x!qir.fixed<2,2>>
      %7 = qir.reshape %6 {layer = "p"} : tensor<8x!qir.fixed<2,2>> -> tensor<4x2x!qir.fixed<2,2>>
      %8 = qir.reduce %7 kind "max" axis 0 {layer = "p"} : tensor<4x2x!qir.fixed<2,2>> -> tensor<1x2x!qir.fixed<2,2>>
      %9 = qir.reshape %8 {layer = "p"} : tensor<1x2x!qir.fixed<2,2>> -> tensor<2x!qir.fixed<2,2>>
      qir.output %9 : tensor<2x!qir.fixed<2,2>>
    }
  }
  %6 = qir.collect %5 {layer = "f"} : tensor<2x2x2x!qir.fixed<2,2>> -> tensor<8x!qir.fixed<2,2>>
  %7 = qir.map %6 {layer = "d"} : tensor<8x!qir.fixed<2,2>> -> tensor<2x!qir.fixed<5,5>> {
    qir.model @d_vector {
      %8 = qir.input "beat" {layer = "d"} : tensor<8x!qir.fixed<2,2>>
      %9 = qir.dense %8 weights(dense<[[1, -1], [-1, -1], [1, 1], [1, -1], [-1, 1], [1, 1], [-1, -1], [1, 1]]> : tensor<8x2xi32> : !qir.fixed<2,2>) {layer = "d"} : tensor<8x!qir.fixed<2,2>> -> tensor<2x!qir.fixed<5,5>>
      qir.output %9 : tensor<2x!qir.fixed<5,5>>
    }
  }
  qir.output %7 : tensor<2x!qir.fixed<5,5>>
}
// CHECK-LABEL: qir.model @bcnn
// CHECK:       qir.model @c_kernel {
// CHECK-NEXT:    %4 = qir.input "beat" {layer = "c"} : tensor<8x!qir.fixed<2,2>>
// CHECK-NEXT:    %5 = qir.xnor %4 weights(dense<{{\[\[}}1, 0, 1, 0, 0, 1, 1, 0], [0, 1, 1, 0, 1, 1, 0, 1]]> : tensor<2x8xi32>) one 1 zero -1 {layer = "c"}
// CHECK:       qir.model @d_vector {
// CHECK-NEXT:    %8 = qir.input "beat" {layer = "d"} : tensor<8x!qir.fixed<2,2>>
// CHECK-NEXT:    %9 = qir.xnor %8 weights(dense<{{\[\[}}1, 0, 1, 1, 0, 1, 0, 1], [0, 0, 1, 0, 1, 1, 0, 1]]> : tensor<2x8xi32>) one 1 zero -1 {layer = "d"}
// The popcount, its exact scale and the sign chain s1 fold into one thresholded qir.xnor:
// sign(16 (2p - 8) + 1) is +1 from p = 4 on.
// FOLD-LABEL: qir.model @c_kernel
// FOLD-NEXT:    %4 = qir.input "beat"
// FOLD-NEXT:    %5 = qir.xnor %4 weights({{.*}}) one 1 zero -1 thresholds(dense<4> : tensor<2xi32>) below(dense<-1> : tensor<2xi32>) above(dense<1> : tensor<2xi32>) {layer = "s1"} : tensor<8x!qir.fixed<2,2>> -> tensor<2x!qir.fixed<2,2>>
// FOLD-NEXT:    qir.output %5

// -----

// A padded window injects its fill (0) at the border taps: three codes, so not xnor (a ternary
// kernel), and an explicit xnor request names the codes.
qir.model @padded attributes {io = "stream"} {
  %0 = qir.input "x" : tensor<3x3x1x!qir.fixed<4,2>>
  %1 = qir.map %0 {layer = "s0"} : tensor<3x3x1x!qir.fixed<4,2>> -> tensor<3x3x1x!qir.fixed<2,2>> {
    qir.model @s0_beat {
      %2 = qir.input "beat" {layer = "s0"} : tensor<1x!qir.fixed<4,2>>
      %3 = qir.scale %2 scale(dense<1> : tensor<1xi32> : !qir.ufixed<1,4>) bias(dense<1> : tensor<1xi32> : !qir.ufixed<1,1>) {layer = "s0"} : tensor<1x!qir.fixed<4,2>> -> tensor<1x!qir.fixed<5,5>>
      %4 = qir.quantize %3 rounding "trn" overflow "sat_sym" {layer = "s0"} : tensor<1x!qir.fixed<5,5>> -> tensor<1x!qir.fixed<2,2>>
      qir.output %4 : tensor<1x!qir.fixed<2,2>>
    }
  }
  %2 = qir.window %1 window [2, 2] strides [1, 1] dilations [1, 1] pads [0, 0, 1, 1] fill 0 {layer = "cp"} : tensor<3x3x1x!qir.fixed<2,2>> -> tensor<3x3x4x!qir.fixed<2,2>>
  %3 = qir.map %2 {layer = "cp"} : tensor<3x3x4x!qir.fixed<2,2>> -> tensor<3x3x2x!qir.fixed<4,4>> {
    qir.model @cp_kernel {
      %4 = qir.input "beat" {layer = "cp"} : tensor<4x!qir.fixed<2,2>>
      %5 = qir.dense %4 weights(dense<[[1, -1], [-1, 1], [1, 1], [-1, -1]]> : tensor<4x2xi32> : !qir.fixed<2,2>) {layer = "cp"} : tensor<4x!qir.fixed<2,2>> -> tensor<2x!qir.fixed<4,4>>
      qir.output %5 : tensor<2x!qir.fixed<4,4>>
    }
  }
  qir.output %3 : tensor<3x3x2x!qir.fixed<4,4>>
}
// CHECK-LABEL: qir.model @padded
// CHECK:       qir.model @cp_kernel {
// CHECK-NOT:     qir.xnor
// CHECK:         qir.cmvm
// ERR: layer 'cp' cannot use style xnor: its input is not provably two-valued (it can take the codes -1, 0, 1)
