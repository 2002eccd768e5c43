// RUN: qir-opt %s --split-input-file -p 'qir-lower-dense{style=xnor}' | filecheck %s
// RUN: qir-opt %s --split-input-file -p 'qir-lower-dense{style=auto}' | filecheck %s
// RUN: qir-opt %s --split-input-file -p 'qir-lower-dense{style=ternary layers="fc:xnor"}' | filecheck %s

// {0, 1} input (ufixed<1,1>: two-valued by its type), weights +-2 and +-1 per column:
// popcount p, then y = g*p + c exactly (g = a*(hi-lo), c = a*(lo*S - (hi-lo)*N0) + bias).
qir.model @u01 {
  %0 = qir.input "x" : tensor<3x!qir.ufixed<1,1>>
  %1 = qir.dense %0 weights(dense<[[2, -1], [-2, -1], [2, 1]]> : tensor<3x2xi32> : !qir.fixed<3,2>) bias(dense<[1, -3]> : tensor<2xi32> : !qir.fixed<4,3>) {layer = "fc"} : tensor<3x!qir.ufixed<1,1>> -> tensor<2x!qir.fixed<5,4>>
  qir.output %1 : tensor<2x!qir.fixed<5,4>>
}
// CHECK-LABEL: qir.model @u01
// CHECK:       %1 = qir.xnor %0 weights(dense<{{\[\[}}1, 0, 1], [0, 0, 1]]> : tensor<2x3xi32>) one 1 zero 0 {layer = "fc"} : tensor<3x!qir.ufixed<1,1>> -> tensor<2x!qir.ufixed<2,2>>
// CHECK-NEXT:  %2 = qir.scale %1 scale(dense<[2, 1]> : tensor<2xi32> : !qir.ufixed<2,1>) bias(dense<[-1, -5]> : tensor<2xi32> : !qir.fixed<4,3>) {layer = "fc"} : tensor<2x!qir.ufixed<2,2>> -> tensor<2x!qir.fixed<5,4>>
// CHECK-NEXT:  qir.output %2 : tensor<2x!qir.fixed<5,4>>

// -----

// +-1 from a sign step (2x+1 saturated to fixed<2,2>, as the Keras frontend writes QKeras
// binary): the codes are -1 and 1; the popcount of 4 inputs can reach 7 in ufixed<3,3>, so a
// wrap quantize (exact: p <= 4) returns to the dense's own type.
qir.model @pm1 {
  %0 = qir.input "x" : tensor<4x!qir.fixed<4,2>>
  %1 = qir.scale %0 scale(dense<1> : tensor<1xi32> : !qir.ufixed<1,4>) bias(dense<1> : tensor<1xi32> : !qir.ufixed<1,1>) {layer = "sign"} : tensor<4x!qir.fixed<4,2>> -> tensor<4x!qir.fixed<5,5>>
  %2 = qir.quantize %1 rounding "trn" overflow "sat_sym" {layer = "sign"} : tensor<4x!qir.fixed<5,5>> -> tensor<4x!qir.fixed<2,2>>
  %3 = qir.dense %2 weights(dense<[[1], [-1], [-1], [1]]> : tensor<4x1xi32> : !qir.fixed<2,2>) {layer = "fc"} : tensor<4x!qir.fixed<2,2>> -> tensor<1x!qir.fixed<4,4>>
  qir.output %3 : tensor<1x!qir.fixed<4,4>>
}
// CHECK-LABEL: qir.model @pm1
// CHECK:       %3 = qir.xnor %2 weights(dense<{{\[\[}}1, 0, 0, 1]]> : tensor<1x4xi32>) one 1 zero -1 {layer = "fc"} : tensor<4x!qir.fixed<2,2>> -> tensor<1x!qir.ufixed<3,3>>
// CHECK-NEXT:  %4 = qir.scale %3 scale(dense<2> : tensor<1xi32> : !qir.ufixed<2,2>) bias(dense<-4> : tensor<1xi32> : !qir.fixed<4,4>) {layer = "fc"} : tensor<1x!qir.ufixed<3,3>> -> tensor<1x!qir.fixed<5,5>>
// CHECK-NEXT:  %5 = qir.quantize %4 rounding "trn" overflow "wrap" {layer = "fc"} : tensor<1x!qir.fixed<5,5>> -> tensor<1x!qir.fixed<4,4>>
// CHECK-NEXT:  qir.output %5 : tensor<1x!qir.fixed<4,4>>
