// RUN: qir-opt %s --split-input-file | filecheck %s
// RUN: qir-opt %s --split-input-file --print-op-generic | qir-opt --split-input-file | filecheck %s
// qir.mul (exact products, broadcast second operand) and qir.reduce (keepdims) round trip.

qir.model @softmaxish {
  %0 = qir.input "x" {layer = "in"} : tensor<2x3x!qir.fixed<8,3>>
  %1 = qir.reduce %0 kind "max" axis 1 {layer = "m"} : tensor<2x3x!qir.fixed<8,3>> -> tensor<2x1x!qir.fixed<8,3>>
  %2 = qir.reduce %0 kind "sum" axis 0 {layer = "s"} : tensor<2x3x!qir.fixed<8,3>> -> tensor<1x3x!qir.fixed<9,4>>
  %3 = qir.reduce %0 kind "maxabs" axis 1 {layer = "a"} : tensor<2x3x!qir.fixed<8,3>> -> tensor<2x1x!qir.ufixed<8,3>>
  %4 = qir.mul %0, %1 {layer = "p"} : tensor<2x3x!qir.fixed<8,3>>, tensor<2x1x!qir.fixed<8,3>> -> tensor<2x3x!qir.fixed<16,6>>
  %5 = qir.mul %0, %2 : tensor<2x3x!qir.fixed<8,3>>, tensor<1x3x!qir.fixed<9,4>> -> tensor<2x3x!qir.fixed<17,7>>
  %6 = qir.mul %4, %3 : tensor<2x3x!qir.fixed<16,6>>, tensor<2x1x!qir.ufixed<8,3>> -> tensor<2x3x!qir.fixed<24,9>>
  qir.output %5, %6 : tensor<2x3x!qir.fixed<17,7>>, tensor<2x3x!qir.fixed<24,9>>
}

// CHECK:      qir.model @softmaxish {
// CHECK-NEXT:   %0 = qir.input "x" {layer = "in"} : tensor<2x3x!qir.fixed<8,3>>
// CHECK-NEXT:   %1 = qir.reduce %0 kind "max" axis 1 {layer = "m"} : tensor<2x3x!qir.fixed<8,3>> -> tensor<2x1x!qir.fixed<8,3>>
// CHECK-NEXT:   %2 = qir.reduce %0 kind "sum" axis 0 {layer = "s"} : tensor<2x3x!qir.fixed<8,3>> -> tensor<1x3x!qir.fixed<9,4>>
// CHECK-NEXT:   %3 = qir.reduce %0 kind "maxabs" axis 1 {layer = "a"} : tensor<2x3x!qir.fixed<8,3>> -> tensor<2x1x!qir.ufixed<8,3>>
// CHECK-NEXT:   %4 = qir.mul %0, %1 {layer = "p"} : tensor<2x3x!qir.fixed<8,3>>, tensor<2x1x!qir.fixed<8,3>> -> tensor<2x3x!qir.fixed<16,6>>
// CHECK-NEXT:   %5 = qir.mul %0, %2 : tensor<2x3x!qir.fixed<8,3>>, tensor<1x3x!qir.fixed<9,4>> -> tensor<2x3x!qir.fixed<17,7>>
// CHECK-NEXT:   %6 = qir.mul %4, %3 : tensor<2x3x!qir.fixed<16,6>>, tensor<2x1x!qir.ufixed<8,3>> -> tensor<2x3x!qir.fixed<24,9>>
// CHECK-NEXT:   qir.output %5, %6 : tensor<2x3x!qir.fixed<17,7>>, tensor<2x3x!qir.fixed<24,9>>
// CHECK-NEXT: }

// -----

// A (1,) second operand is one scalar for every element.
qir.model @scalar {
  %0 = qir.input "x" : tensor<4x!qir.ufixed<4,0>>
  %1 = qir.reduce %0 kind "sum" axis 0 : tensor<4x!qir.ufixed<4,0>> -> tensor<1x!qir.ufixed<6,2>>
  %2 = qir.mul %0, %1 : tensor<4x!qir.ufixed<4,0>>, tensor<1x!qir.ufixed<6,2>> -> tensor<4x!qir.ufixed<10,2>>
  qir.output %2 : tensor<4x!qir.ufixed<10,2>>
}
// CHECK-LABEL: qir.model @scalar
// CHECK:         %2 = qir.mul %0, %1 : tensor<4x!qir.ufixed<4,0>>, tensor<1x!qir.ufixed<6,2>> -> tensor<4x!qir.ufixed<10,2>>
