// RUN: qir-opt %s | filecheck %s
// RUN: qir-opt %s --print-op-generic | qir-opt | filecheck %s
// qir.xnor: popcount form (no thresholds) and thresholded form; qir.threshold; custom -> generic -> custom.

qir.model @bnn {
  %0 = qir.input "x" : tensor<3x!qir.fixed<2,2>>
  %1 = qir.xnor %0 weights(dense<[[1, 0, 1], [0, 0, 1]]> : tensor<2x3xi32>) one 1 zero -1 {layer = "fc"} : tensor<3x!qir.fixed<2,2>> -> tensor<2x!qir.ufixed<2,2>>
  %2 = qir.xnor %0 weights(dense<[[1, 0, 1], [0, 0, 1]]> : tensor<2x3xi32>) one 1 zero -1 thresholds(dense<[2, 4]> : tensor<2xi32>) below(dense<[-1, 1]> : tensor<2xi32>) above(dense<[1, -1]> : tensor<2xi32>) {layer = "act"} : tensor<3x!qir.fixed<2,2>> -> tensor<2x!qir.fixed<2,2>>
  %3 = qir.threshold %0 thresholds(dense<[-2, 0, 2]> : tensor<3xi32>) below(dense<0> : tensor<1xi32>) above(dense<1> : tensor<1xi32>) {layer = "t"} : tensor<3x!qir.fixed<2,2>> -> tensor<3x!qir.ufixed<1,1>>
  qir.output %1, %2, %3 : tensor<2x!qir.ufixed<2,2>>, tensor<2x!qir.fixed<2,2>>, tensor<3x!qir.ufixed<1,1>>
}

// CHECK:      %1 = qir.xnor %0 weights(dense<{{\[\[}}1, 0, 1], [0, 0, 1]]> : tensor<2x3xi32>) one 1 zero -1 {layer = "fc"} : tensor<3x!qir.fixed<2,2>> -> tensor<2x!qir.ufixed<2,2>>
// CHECK-NEXT: %2 = qir.xnor %0 weights(dense<{{\[\[}}1, 0, 1], [0, 0, 1]]> : tensor<2x3xi32>) one 1 zero -1 thresholds(dense<[2, 4]> : tensor<2xi32>) below(dense<[-1, 1]> : tensor<2xi32>) above(dense<[1, -1]> : tensor<2xi32>) {layer = "act"} : tensor<3x!qir.fixed<2,2>> -> tensor<2x!qir.fixed<2,2>>
// CHECK-NEXT: %3 = qir.threshold %0 thresholds(dense<[-2, 0, 2]> : tensor<3xi32>) below(dense<0> : tensor<1xi32>) above(dense<1> : tensor<1xi32>) {layer = "t"} : tensor<3x!qir.fixed<2,2>> -> tensor<3x!qir.ufixed<1,1>>
