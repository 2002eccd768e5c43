// RUN: qir-opt %s --split-input-file -p 'qir-lower-dense{style=mac}' | filecheck %s

// Bias coarser than the products: the bias is shifted onto the products' grid (2^-8 here).
qir.model @bias_coarse {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[1, -2], [3, 4]]> : tensor<2x2xi32> : !qir.fixed<4,1>) bias(dense<[1, 2]> : tensor<2xi32> : !qir.fixed<4,1>) {layer = "fc1"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<11,3>>
  qir.output %1 : tensor<2x!qir.fixed<11,3>>
}
// CHECK-LABEL: qir.model @bias_coarse
// CHECK:       %1 = qir.cmvm %0 matrix(dense<{{\[\[}}1, -2], [3, 4]]> : tensor<2x2xi32>) offset(dense<[32, 64]> : tensor<2xi32>) shift 3 : i32 style "mac" {layer = "fc1"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<11,3>>
// CHECK-NOT:   qir.dense

// -----

// Bias finer than the products: the weights are scaled onto the bias grid instead.
qir.model @bias_fine {
  %0 = qir.input "x" : tensor<1x!qir.fixed<4,4>>
  %1 = qir.dense %0 weights(dense<[[-8]]> : tensor<1x1xi32> : !qir.fixed<4,1>) bias(dense<-1> : tensor<1xi32> : !qir.fixed<8,0>) : tensor<1x!qir.fixed<4,4>> -> tensor<1x!qir.fixed<12,4>>
  qir.output %1 : tensor<1x!qir.fixed<12,4>>
}
// CHECK-LABEL: qir.model @bias_fine
// CHECK:       qir.cmvm %0 matrix(dense<-256> : tensor<1x1xi32>) offset(dense<-1> : tensor<1xi32>) shift 8 : i32 style "mac" : tensor<1x!qir.fixed<4,4>> -> tensor<1x!qir.fixed<12,4>>

// -----

// A result type finer than needed keeps its type: constants are rescaled onto its grid.
qir.model @finer {
  %0 = qir.input "x" : tensor<1x!qir.fixed<4,4>>
  %1 = qir.dense %0 weights(dense<[[3]]> : tensor<1x1xi32> : !qir.fixed<4,4>) : tensor<1x!qir.fixed<4,4>> -> tensor<1x!qir.fixed<10,8>>
  qir.output %1 : tensor<1x!qir.fixed<10,8>>
}
// CHECK-LABEL: qir.model @finer
// CHECK:       qir.cmvm %0 matrix(dense<12> : tensor<1x1xi32>) offset(dense<0> : tensor<1xi32>) shift 2 : i32 style "mac" : tensor<1x!qir.fixed<4,4>> -> tensor<1x!qir.fixed<10,8>>
