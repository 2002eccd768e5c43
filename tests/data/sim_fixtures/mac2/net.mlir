builtin.module {
  qir.model @mac2 {
    %0 = qir.input "x" {layer = "in"} : tensor<4x!qir.fixed<8,3>>
    %1 = qir.dense %0 weights(dense<[[3, -5, 7], [-8, 1, 2], [4, 4, -1], [-2, 6, 5]]> : tensor<4x3xi32> : !qir.fixed<5,2>) bias(dense<[5, -3, 9]> : tensor<3xi32> : !qir.fixed<6,1>) {layer = "fc"} : tensor<4x!qir.fixed<8,3>> -> tensor<3x!qir.fixed<14,6>>
    %2 = qir.quantize %1 rounding "rnd" overflow "sat" {layer = "fc"} : tensor<3x!qir.fixed<14,6>> -> tensor<3x!qir.fixed<8,4>>
    qir.output %2 : tensor<3x!qir.fixed<8,4>>
  }
}
