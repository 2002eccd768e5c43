// RUN: qir-opt %s | filecheck %s
// RUN: qir-opt %s --print-op-generic | qir-opt | filecheck %s
// qir.mvu (a folded constant matrix-vector product) and a folded qir.xnor: custom -> generic -> custom.

qir.model @folded {
  %0 = qir.input "x" : tensor<3x!qir.fixed<8,3>>
  %1 = qir.mvu %0 matrix(dense<[[1, -2], [3, 4], [5, 7]]> : tensor<3x2xi32>) offset(dense<[32, 64]> : tensor<2xi32>) shift 3 : i32 style "mac" reuse 2 : i64 impl "rom" {layer = "fc1"} : tensor<3x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<12,4>>
  %2 = qir.input "b" : tensor<3x!qir.fixed<2,2>>
  %3 = qir.xnor %2 weights(dense<[[1, 0, 1], [0, 0, 1]]> : tensor<2x3xi32>) one 1 zero -1 reuse 3 : i64 {layer = "fc2"} : tensor<3x!qir.fixed<2,2>> -> tensor<2x!qir.ufixed<2,2>>
  qir.output %1, %3 : tensor<2x!qir.fixed<12,4>>, tensor<2x!qir.ufixed<2,2>>
}
// CHECK:      %1 = qir.mvu %0 matrix(dense<{{\[\[}}1, -2], [3, 4], [5, 7]]> : tensor<3x2xi32>) offset(dense<[32, 64]> : tensor<2xi32>) shift 3 : i32 style "mac" reuse 2 : i64 impl "rom" {layer = "fc1"} : tensor<3x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<12,4>>
// CHECK:      %3 = qir.xnor %2 weights(dense<{{\[\[}}1, 0, 1], [0, 0, 1]]> : tensor<2x3xi32>) one 1 zero -1 reuse 3 : i64 {layer = "fc2"} : tensor<3x!qir.fixed<2,2>> -> tensor<2x!qir.ufixed<2,2>>
