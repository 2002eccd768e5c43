// RUN: qir-opt %s --split-input-file -p qir-fold-threshold | filecheck %s

// popcount -> per-channel scale (+1 and -1: the second flips the comparison) -> sign.  Output 0
// is 1 for p >= 2; output 1 is 1 for p <= 2, i.e. below = 1, above = -1 from T = 3.
qir.model @sign {
  %0 = qir.input "x" : tensor<4x!qir.fixed<2,2>>
  %1 = qir.xnor %0 weights(dense<[[1, 0, 0, 1], [1, 1, 1, 1]]> : tensor<2x4xi32>) one 1 zero -1 {layer = "fc"} : tensor<4x!qir.fixed<2,2>> -> tensor<2x!qir.ufixed<3,3>>
  %2 = qir.scale %1 scale(dense<[1, -1]> : tensor<2xi32> : !qir.fixed<2,2>) bias(dense<[-2, 2]> : tensor<2xi32> : !qir.fixed<3,3>) {layer = "bn"} : tensor<2x!qir.ufixed<3,3>> -> tensor<2x!qir.fixed<4,4>>
  %3 = qir.scale %2 scale(dense<2> : tensor<1xi32> : !qir.ufixed<2,2>) bias(dense<1> : tensor<1xi32> : !qir.ufixed<1,1>) {layer = "act"} : tensor<2x!qir.fixed<4,4>> -> tensor<2x!qir.fixed<5,5>>
  %4 = qir.quantize %3 rounding "trn" overflow "sat_sym" {layer = "act"} : tensor<2x!qir.fixed<5,5>> -> tensor<2x!qir.fixed<2,2>>
  qir.output %4 : tensor<2x!qir.fixed<2,2>>
}
// CHECK-LABEL: qir.model @sign
// CHECK-NEXT:  %0 = qir.input
// CHECK-NEXT:  %1 = qir.xnor %0 weights(dense<{{\[\[}}1, 0, 0, 1], [1, 1, 1, 1]]> : tensor<2x4xi32>) one 1 zero -1 thresholds(dense<[2, 3]> : tensor<2xi32>) below(dense<[-1, 1]> : tensor<2xi32>) above(dense<[1, -1]> : tensor<2xi32>) {layer = "act"} : tensor<4x!qir.fixed<2,2>> -> tensor<2x!qir.fixed<2,2>>
// CHECK-NEXT:  qir.output %1 : tensor<2x!qir.fixed<2,2>>

// -----

// Constant outputs (the bias keeps the sign fixed for every p): threshold 0, below = above.
qir.model @constant {
  %0 = qir.input "x" : tensor<4x!qir.fixed<2,2>>
  %1 = qir.xnor %0 weights(dense<[[1, 0, 0, 1], [1, 1, 1, 1]]> : tensor<2x4xi32>) one 1 zero -1 {layer = "fc"} : tensor<4x!qir.fixed<2,2>> -> tensor<2x!qir.ufixed<3,3>>
  %2 = qir.scale %1 bias(dense<[5, -8]> : tensor<2xi32> : !qir.fixed<5,5>) {layer = "bn"} : tensor<2x!qir.ufixed<3,3>> -> tensor<2x!qir.fixed<5,5>>
  %3 = qir.scale %2 scale(dense<2> : tensor<1xi32> : !qir.ufixed<2,2>) bias(dense<1> : tensor<1xi32> : !qir.ufixed<1,1>) {layer = "act"} : tensor<2x!qir.fixed<5,5>> -> tensor<2x!qir.fixed<6,6>>
  %4 = qir.quantize %3 rounding "trn" overflow "sat_sym" {layer = "act"} : tensor<2x!qir.fixed<6,6>> -> tensor<2x!qir.fixed<2,2>>
  qir.output %4 : tensor<2x!qir.fixed<2,2>>
}
// CHECK-LABEL: qir.model @constant
// CHECK:       qir.xnor %0 {{.*}} thresholds(dense<0> : tensor<2xi32>) below(dense<[1, -1]> : tensor<2xi32>) above(dense<[1, -1]> : tensor<2xi32>)
// CHECK-NOT:   qir.scale

// -----

// Not a step (a relu keeps many values): the chain stays as it is.
qir.model @relu {
  %0 = qir.input "x" : tensor<4x!qir.fixed<2,2>>
  %1 = qir.xnor %0 weights(dense<[[1, 0, 0, 1]]> : tensor<1x4xi32>) one 1 zero -1 {layer = "fc"} : tensor<4x!qir.fixed<2,2>> -> tensor<1x!qir.ufixed<3,3>>
  %2 = qir.scale %1 bias(dense<-2> : tensor<1xi32> : !qir.fixed<3,3>) {layer = "bn"} : tensor<1x!qir.ufixed<3,3>> -> tensor<1x!qir.fixed<4,4>>
  %3 = qir.relu %2 {layer = "act"} : tensor<1x!qir.fixed<4,4>>
  qir.output %3 : tensor<1x!qir.fixed<4,4>>
}
// CHECK-LABEL: qir.model @relu
// CHECK:       qir.xnor %0 weights(dense<{{\[\[}}1, 0, 0, 1]]> : tensor<1x4xi32>) one 1 zero -1 {layer = "fc"}
// CHECK-NEXT:  qir.scale
// CHECK-NEXT:  qir.relu

// -----

// A step that is used twice: folded up to it; an intermediate used twice stops the chain before.
qir.model @uses {
  %0 = qir.input "x" : tensor<4x!qir.fixed<2,2>>
  %1 = qir.xnor %0 weights(dense<[[1, 0, 0, 1]]> : tensor<1x4xi32>) one 1 zero -1 {layer = "fc"} : tensor<4x!qir.fixed<2,2>> -> tensor<1x!qir.ufixed<3,3>>
  %2 = qir.scale %1 scale(dense<2> : tensor<1xi32> : !qir.ufixed<2,2>) bias(dense<-3> : tensor<1xi32> : !qir.fixed<3,3>) {layer = "act"} : tensor<1x!qir.ufixed<3,3>> -> tensor<1x!qir.fixed<5,5>>
  %3 = qir.quantize %2 rounding "trn" overflow "sat" {layer = "act"} : tensor<1x!qir.fixed<5,5>> -> tensor<1x!qir.ufixed<1,1>>
  %4 = qir.xnor %0 weights(dense<[[1, 1, 0, 1]]> : tensor<1x4xi32>) one 1 zero -1 {layer = "fc2"} : tensor<4x!qir.fixed<2,2>> -> tensor<1x!qir.ufixed<3,3>>
  %5 = qir.scale %4 scale(dense<2> : tensor<1xi32> : !qir.ufixed<2,2>) bias(dense<-3> : tensor<1xi32> : !qir.fixed<3,3>) {layer = "act2"} : tensor<1x!qir.ufixed<3,3>> -> tensor<1x!qir.fixed<5,5>>
  %6 = qir.quantize %5 rounding "trn" overflow "sat" {layer = "act2"} : tensor<1x!qir.fixed<5,5>> -> tensor<1x!qir.ufixed<1,1>>
  qir.output %3, %3, %5, %6 : tensor<1x!qir.ufixed<1,1>>, tensor<1x!qir.ufixed<1,1>>, tensor<1x!qir.fixed<5,5>>, tensor<1x!qir.ufixed<1,1>>
}
// CHECK-LABEL: qir.model @uses
// CHECK:       %[[A:.*]] = qir.xnor %0 weights(dense<{{\[\[}}1, 0, 0, 1]]> : tensor<1x4xi32>) one 1 zero -1 thresholds(dense<2> : tensor<1xi32>) below(dense<0> : tensor<1xi32>) above(dense<1> : tensor<1xi32>) {layer = "act"} : tensor<4x!qir.fixed<2,2>> -> tensor<1x!qir.ufixed<1,1>>
// CHECK:       %[[P:.*]] = qir.xnor %0 weights(dense<{{\[\[}}1, 1, 0, 1]]> : tensor<1x4xi32>) one 1 zero -1 {layer = "fc2"}
// CHECK-NEXT:  %[[S:.*]] = qir.scale %[[P]]
// CHECK-NEXT:  %[[Q:.*]] = qir.quantize %[[S]]
// CHECK-NEXT:  qir.output %[[A]], %[[A]], %[[S]], %[[Q]]

// -----

// After a non-binary value (an 8-bit accumulator: 256 codes per channel): the batchnorm + sign
// chain becomes one qir.threshold; channel 1's negative scale swaps the codes.
qir.model @accumulator {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.scale %0 scale(dense<[3, -2]> : tensor<2xi32> : !qir.fixed<4,2>) bias(dense<[5, 1]> : tensor<2xi32> : !qir.fixed<4,2>) {layer = "bn"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<12,5>>
  %2 = qir.scale %1 scale(dense<1> : tensor<1xi32> : !qir.ufixed<1,9>) bias(dense<1> : tensor<1xi32> : !qir.ufixed<1,1>) {layer = "act"} : tensor<2x!qir.fixed<12,5>> -> tensor<2x!qir.fixed<14,14>>
  %3 = qir.quantize %2 rounding "trn" overflow "sat_sym" {layer = "act"} : tensor<2x!qir.fixed<14,14>> -> tensor<2x!qir.fixed<2,2>>
  qir.output %3 : tensor<2x!qir.fixed<2,2>>
}
// CHECK-LABEL: qir.model @accumulator
// CHECK-NEXT:  %0 = qir.input
// CHECK-NEXT:  %1 = qir.threshold %0 thresholds(dense<[-53, 17]> : tensor<2xi32>) below(dense<[-1, 1]> : tensor<2xi32>) above(dense<[1, -1]> : tensor<2xi32>) {layer = "act"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<2,2>>
// CHECK-NEXT:  qir.output %1

// -----

// all=false keeps chains after non-binary values.
// RUN: qir-opt %s --split-input-file -p 'qir-fold-threshold{all=false}' | filecheck %s --check-prefix=KEEP
qir.model @keep {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.scale %0 scale(dense<1> : tensor<1xi32> : !qir.ufixed<1,7>) bias(dense<1> : tensor<1xi32> : !qir.ufixed<1,1>) {layer = "act"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<10,10>>
  %2 = qir.quantize %1 rounding "trn" overflow "sat_sym" {layer = "act"} : tensor<2x!qir.fixed<10,10>> -> tensor<2x!qir.fixed<2,2>>
  qir.output %2 : tensor<2x!qir.fixed<2,2>>
}
// KEEP-LABEL: qir.model @keep
// KEEP:       qir.scale
// KEEP-NEXT:  qir.quantize
// KEEP-NOT:   qir.threshold
