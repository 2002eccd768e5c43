builtin.module {
  qir.model @relu1_stream {
    %0 = qir.input "x" {layer = "in"} : tensor<1x!qir.fixed<8,3>>
    %1 = qir.relu %0 {layer = "act"} : tensor<1x!qir.fixed<8,3>>
    qir.output %1 : tensor<1x!qir.fixed<8,3>>
  }
}
