builtin.module {
  qir.model @two_port {
    %0 = qir.input "a" {layer = "in_a"} : tensor<2x!qir.fixed<6,3>>
    %1 = qir.input "b" {layer = "in_b"} : tensor<3x!qir.ufixed<8,4>>
    %2 = qir.relu %0 {layer = "act"} : tensor<2x!qir.fixed<6,3>>
    %3 = qir.quantize %1 rounding "trn" overflow "wrap" {layer = "q"} : tensor<3x!qir.ufixed<8,4>> -> tensor<3x!qir.ufixed<5,3>>
    qir.output %2, %3 : tensor<2x!qir.fixed<6,3>>, tensor<3x!qir.ufixed<5,3>>
  }
}
