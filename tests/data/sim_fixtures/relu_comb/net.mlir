builtin.module {
  qir.model @relu_comb {
    %0 = qir.input "x" {layer = "in"} : tensor<2x3x!qir.fixed<5,2>>
    %1 = qir.relu %0 {layer = "act"} : tensor<2x3x!qir.fixed<5,2>>
    %2 = qir.quantize %1 rounding "trn" overflow "sat" {layer = "act"} : tensor<2x3x!qir.fixed<5,2>> -> tensor<2x3x!qir.ufixed<4,2>>
    qir.output %2 : tensor<2x3x!qir.ufixed<4,2>>
  }
}
