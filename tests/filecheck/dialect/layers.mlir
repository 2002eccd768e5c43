// RUN: qir-opt %s --split-input-file | filecheck %s
// RUN: qir-opt %s --split-input-file --print-op-generic | qir-opt --split-input-file | filecheck %s
// Spatial, elementwise and shape ops: custom -> generic -> custom gives the custom form back.

qir.model @cnn {
  %0 = qir.input "x" {layer = "in"} : tensor<4x4x2x!qir.fixed<8,3>>
  %1 = qir.conv %0 weights(dense<1> : tensor<3x3x2x3xi32> : !qir.fixed<4,1>) bias(dense<[1, 2, 3]> : tensor<3xi32> : !qir.fixed<4,1>) strides [1, 1] dilations [1, 1] pads [1, 1, 1, 1] groups 1 {layer = "c1"} : tensor<4x4x2x!qir.fixed<8,3>> -> tensor<4x4x3x!qir.fixed<13,5>>
  %2 = qir.conv %1 weights(dense<[[[[1, -1, 2, -2, 3, -3]]]]> : tensor<1x1x1x6xi32> : !qir.fixed<3,3>) strides [2, 1] dilations [1, 1] pads [0, 0, 1, 0] groups 3 {layer = "dw"} : tensor<4x4x3x!qir.fixed<13,5>> -> tensor<3x4x6x!qir.fixed<15,7>>
  %3 = qir.pool %2 kind "max" window [2, 2] strides [2, 2] pads [0, 0, 1, 0] {layer = "mp"} : tensor<3x4x6x!qir.fixed<15,7>> -> tensor<2x2x6x!qir.fixed<15,7>>
  %4 = qir.pool %3 kind "avg" window [2, 2] strides [1, 1] pads [0, 0, 1, 1] count "valid" multiplier(dense<[255, 128, 85, 64]> : tensor<4xi32> : !qir.ufixed<8,0>) {layer = "ap"} : tensor<2x2x6x!qir.fixed<15,7>> -> tensor<2x2x6x!qir.fixed<25,9>>
  %5 = qir.pool %4 kind "avg" window [2, 2] strides [1, 1] pads [0, 0, 0, 0] count "window" multiplier(dense<32> : tensor<1xi32> : !qir.fixed<8,1>) {layer = "gap"} : tensor<2x2x6x!qir.fixed<25,9>> -> tensor<1x1x6x!qir.fixed<34,11>>
  %6 = qir.scale %5 scale(dense<[1, 2, 3, 4, 5, 6]> : tensor<6xi32> : !qir.fixed<4,2>) bias(dense<1> : tensor<1xi32> : !qir.fixed<4,2>) {layer = "bn"} : tensor<1x1x6x!qir.fixed<34,11>> -> tensor<1x1x6x!qir.fixed<39,14>>
  %7 = qir.scale %6 bias(dense<-1> : tensor<1xi32> : !qir.fixed<2,1>) : tensor<1x1x6x!qir.fixed<39,14>> -> tensor<1x1x6x!qir.fixed<40,15>>
  %8 = qir.add %6, %7, %6 {layer = "add"} : tensor<1x1x6x!qir.fixed<39,14>>, tensor<1x1x6x!qir.fixed<40,15>>, tensor<1x1x6x!qir.fixed<39,14>> -> tensor<1x1x6x!qir.fixed<42,17>>
  %9 = qir.concat %8, %5 axis 2 {layer = "cat"} : tensor<1x1x6x!qir.fixed<42,17>>, tensor<1x1x6x!qir.fixed<34,11>> -> tensor<1x1x12x!qir.fixed<42,17>>
  %10 = qir.reshape %9 {layer = "flatten"} : tensor<1x1x12x!qir.fixed<42,17>> -> tensor<12x!qir.fixed<42,17>>
  %11 = qir.leaky_relu %10 alpha(dense<3> : tensor<1xi32> : !qir.ufixed<4,0>) {layer = "lrelu"} : tensor<12x!qir.fixed<42,17>> -> tensor<12x!qir.fixed<46,17>>
  qir.output %11 : tensor<12x!qir.fixed<46,17>>
}

// CHECK:      qir.model @cnn {
// CHECK-NEXT:   %0 = qir.input "x" {layer = "in"} : tensor<4x4x2x!qir.fixed<8,3>>
// CHECK-NEXT:   %1 = qir.conv %0 weights(dense<1> : tensor<3x3x2x3xi32> : !qir.fixed<4,1>) bias(dense<[1, 2, 3]> : tensor<3xi32> : !qir.fixed<4,1>) strides [1, 1] dilations [1, 1] pads [1, 1, 1, 1] groups 1 {layer = "c1"} : tensor<4x4x2x!qir.fixed<8,3>> -> tensor<4x4x3x!qir.fixed<13,5>>
// CHECK-NEXT:   %2 = qir.conv %1 weights(dense<{{\[\[\[\[}}1, -1, 2, -2, 3, -3]]]]> : tensor<1x1x1x6xi32> : !qir.fixed<3,3>) strides [2, 1] dilations [1, 1] pads [0, 0, 1, 0] groups 3 {layer = "dw"} : tensor<4x4x3x!qir.fixed<13,5>> -> tensor<3x4x6x!qir.fixed<15,7>>
// CHECK-NEXT:   %3 = qir.pool %2 kind "max" window [2, 2] strides [2, 2] pads [0, 0, 1, 0] {layer = "mp"} : tensor<3x4x6x!qir.fixed<15,7>> -> tensor<2x2x6x!qir.fixed<15,7>>
// CHECK-NEXT:   %4 = qir.pool %3 kind "avg" window [2, 2] strides [1, 1] pads [0, 0, 1, 1] count "valid" multiplier(dense<[255, 128, 85, 64]> : tensor<4xi32> : !qir.ufixed<8,0>) {layer = "ap"} : tensor<2x2x6x!qir.fixed<15,7>> -> tensor<2x2x6x!qir.fixed<25,9>>
// CHECK-NEXT:   %5 = qir.pool %4 kind "avg" window [2, 2] strides [1, 1] pads [0, 0, 0, 0] count "window" multiplier(dense<32> : tensor<1xi32> : !qir.fixed<8,1>) {layer = "gap"} : tensor<2x2x6x!qir.fixed<25,9>> -> tensor<1x1x6x!qir.fixed<34,11>>
// CHECK-NEXT:   %6 = qir.scale %5 scale(dense<[1, 2, 3, 4, 5, 6]> : tensor<6xi32> : !qir.fixed<4,2>) bias(dense<1> : tensor<1xi32> : !qir.fixed<4,2>) {layer = "bn"} : tensor<1x1x6x!qir.fixed<34,11>> -> tensor<1x1x6x!qir.fixed<39,14>>
// CHECK-NEXT:   %7 = qir.scale %6 bias(dense<-1> : tensor<1xi32> : !qir.fixed<2,1>) : tensor<1x1x6x!qir.fixed<39,14>> -> tensor<1x1x6x!qir.fixed<40,15>>
// CHECK-NEXT:   %8 = qir.add %6, %7, %6 {layer = "add"} : tensor<1x1x6x!qir.fixed<39,14>>, tensor<1x1x6x!qir.fixed<40,15>>, tensor<1x1x6x!qir.fixed<39,14>> -> tensor<1x1x6x!qir.fixed<42,17>>
// CHECK-NEXT:   %9 = qir.concat %8, %5 axis 2 {layer = "cat"} : tensor<1x1x6x!qir.fixed<42,17>>, tensor<1x1x6x!qir.fixed<34,11>> -> tensor<1x1x12x!qir.fixed<42,17>>
// CHECK-NEXT:   %10 = qir.reshape %9 {layer = "flatten"} : tensor<1x1x12x!qir.fixed<42,17>> -> tensor<12x!qir.fixed<42,17>>
// CHECK-NEXT:   %11 = qir.leaky_relu %10 alpha(dense<3> : tensor<1xi32> : !qir.ufixed<4,0>) {layer = "lrelu"} : tensor<12x!qir.fixed<42,17>> -> tensor<12x!qir.fixed<46,17>>
// CHECK-NEXT:   qir.output %11 : tensor<12x!qir.fixed<46,17>>
// CHECK-NEXT: }

// -----

qir.model @seq {
  %0 = qir.input "x" : tensor<3x2x4x!qir.ufixed<3,1>>
  %1 = qir.transpose %0 perm [1, 2, 0] {layer = "t"} : tensor<3x2x4x!qir.ufixed<3,1>> -> tensor<2x4x3x!qir.ufixed<3,1>>
  %2 = qir.pad %1 pads [0, 1, 0, 0, 2, 0] {layer = "zp"} : tensor<2x4x3x!qir.ufixed<3,1>> -> tensor<2x7x3x!qir.ufixed<3,1>>
  %3 = qir.reshape %2 : tensor<2x7x3x!qir.ufixed<3,1>> -> tensor<14x3x!qir.ufixed<3,1>>
  %4 = qir.conv %3 weights(dense<[[[1], [2], [3]], [[-1], [-2], [-3]]]> : tensor<2x3x1xi32> : !qir.fixed<3,0>) strides [1] dilations [3] pads [0, 0] groups 1 {layer = "c1d"} : tensor<14x3x!qir.ufixed<3,1>> -> tensor<11x1x!qir.fixed<8,3>>
  %5 = qir.lut %0 table(dense<[0, 1, 2, 3, 3, 2, 1, 0]> : tensor<8xi32>) {layer = "act"} : tensor<3x2x4x!qir.ufixed<3,1>> -> tensor<3x2x4x!qir.ufixed<2,0>>
  qir.output %4, %5 : tensor<11x1x!qir.fixed<8,3>>, tensor<3x2x4x!qir.ufixed<2,0>>
}

// CHECK:      qir.model @seq {
// CHECK-NEXT:   %0 = qir.input "x" : tensor<3x2x4x!qir.ufixed<3,1>>
// CHECK-NEXT:   %1 = qir.transpose %0 perm [1, 2, 0] {layer = "t"} : tensor<3x2x4x!qir.ufixed<3,1>> -> tensor<2x4x3x!qir.ufixed<3,1>>
// CHECK-NEXT:   %2 = qir.pad %1 pads [0, 1, 0, 0, 2, 0] {layer = "zp"} : tensor<2x4x3x!qir.ufixed<3,1>> -> tensor<2x7x3x!qir.ufixed<3,1>>
// CHECK-NEXT:   %3 = qir.reshape %2 : tensor<2x7x3x!qir.ufixed<3,1>> -> tensor<14x3x!qir.ufixed<3,1>>
// CHECK-NEXT:   %4 = qir.conv %3 weights(dense<{{\[\[\[}}1], [2], [3]], {{\[\[}}-1], [-2], [-3]]]> : tensor<2x3x1xi32> : !qir.fixed<3,0>) strides [1] dilations [3] pads [0, 0] groups 1 {layer = "c1d"} : tensor<14x3x!qir.ufixed<3,1>> -> tensor<11x1x!qir.fixed<8,3>>
// CHECK-NEXT:   %5 = qir.lut %0 table(dense<[0, 1, 2, 3, 3, 2, 1, 0]> : tensor<8xi32>) {layer = "act"} : tensor<3x2x4x!qir.ufixed<3,1>> -> tensor<3x2x4x!qir.ufixed<2,0>>
// CHECK-NEXT:   qir.output %4, %5 : tensor<11x1x!qir.fixed<8,3>>, tensor<3x2x4x!qir.ufixed<2,0>>
// CHECK-NEXT: }

// -----

// qir.steps: a monotone step function on a wide input (quantized_relu_po2 on an accumulator).
qir.model @steps {
  %0 = qir.input "x" : tensor<4x!qir.fixed<20,4>>
  %1 = qir.steps %0 thresholds(dense<[91, 182, 363]> : tensor<3xi32>) values(dense<[1, 2, 4, 8]> : tensor<4xi32>) {layer = "act"} : tensor<4x!qir.fixed<20,4>> -> tensor<4x!qir.ufixed<5,2>>
  qir.output %1 : tensor<4x!qir.ufixed<5,2>>
}

// CHECK:      qir.model @steps {
// CHECK-NEXT:   %0 = qir.input "x" : tensor<4x!qir.fixed<20,4>>
// CHECK-NEXT:   %1 = qir.steps %0 thresholds(dense<[91, 182, 363]> : tensor<3xi32>) values(dense<[1, 2, 4, 8]> : tensor<4xi32>) {layer = "act"} : tensor<4x!qir.fixed<20,4>> -> tensor<4x!qir.ufixed<5,2>>
// CHECK-NEXT:   qir.output %1 : tensor<4x!qir.ufixed<5,2>>
// CHECK-NEXT: }
