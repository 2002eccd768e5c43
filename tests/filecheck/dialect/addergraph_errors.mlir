// RUN: qir-opt %s --split-input-file --verify-diagnostics | filecheck %s
// qir.addergraph's verifier: each structural rule has its own error.

qir.model @later_operand {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.addergraph %0 nodes(dense<[[0, 0, 2, 2, 1]]> : tensor<1x5xi32>) outputs(dense<[[2, 0, 1]]> : tensor<1x3xi32>) offset(dense<0> : tensor<1xi32>) shift 0 : i32 style "cmvm" stages(dense<0> : tensor<2xi32>) latency 0 : i32 {layer = "fc"} : tensor<2x!qir.fixed<8,3>> -> tensor<1x!qir.fixed<12,7>>
  qir.output %1 : tensor<1x!qir.fixed<12,7>>
}
// CHECK: layer 'fc': node 2 = [0, 0, 2, 2, 1] must use earlier nodes, non-negative shifts and sign +-1

// -----

qir.model @bad_output {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.addergraph %0 nodes(dense<[[0, 0, 1, 2, 1]]> : tensor<1x5xi32>) outputs(dense<[[5, 0, 1]]> : tensor<1x3xi32>) offset(dense<0> : tensor<1xi32>) shift 0 : i32 style "cmvm" stages(dense<0> : tensor<2xi32>) latency 0 : i32 {layer = "fc"} : tensor<2x!qir.fixed<8,3>> -> tensor<1x!qir.fixed<12,7>>
  qir.output %1 : tensor<1x!qir.fixed<12,7>>
}
// CHECK: layer 'fc': output 0 = [5, 0, 1] is not a node, shift >= 0, sign +-1

// -----

qir.model @narrow {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.addergraph %0 nodes(dense<[[0, 0, 1, 2, 1]]> : tensor<1x5xi32>) outputs(dense<[[2, 0, 1]]> : tensor<1x3xi32>) offset(dense<0> : tensor<1xi32>) shift 0 : i32 style "cmvm" stages(dense<0> : tensor<2xi32>) latency 0 : i32 {layer = "fc"} : tensor<2x!qir.fixed<8,3>> -> tensor<1x!qir.fixed<10,5>>
  qir.output %1 : tensor<1x!qir.fixed<10,5>>
}
// CHECK: layer 'fc': the sums [-640, 635] (mantissas) do not fit fixed<10,5>; it needs fixed<11,6>

// -----

qir.model @frac {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.addergraph %0 nodes(dense<[[0, 0, 1, 2, 1]]> : tensor<1x5xi32>) outputs(dense<[[2, 0, 1]]> : tensor<1x3xi32>) offset(dense<0> : tensor<1xi32>) shift 1 : i32 style "cmvm" stages(dense<0> : tensor<2xi32>) latency 0 : i32 {layer = "fc"} : tensor<2x!qir.fixed<8,3>> -> tensor<1x!qir.fixed<12,7>>
  qir.output %1 : tensor<1x!qir.fixed<12,7>>
}
// CHECK: layer 'fc': the sums must have exactly 6 fractional bits, have 5

// -----

qir.model @stage_order {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.addergraph %0 nodes(dense<[[0, 0, 1, 2, 1]]> : tensor<1x5xi32>) outputs(dense<[[2, 0, 1]]> : tensor<1x3xi32>) offset(dense<0> : tensor<1xi32>) shift 0 : i32 style "cmvm" stages(dense<[2, 1]> : tensor<2xi32>) latency 1 : i32 {layer = "fc"} : tensor<2x!qir.fixed<8,3>> -> tensor<1x!qir.fixed<12,7>>
  qir.output %1 : tensor<1x!qir.fixed<12,7>>
}
// CHECK: layer 'fc': node 2 is in stage 2, before an operand or after the latency 1

// -----

qir.model @half_epilogue {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = "qir.addergraph"(%0) <{nodes = dense<[[0, 0, 1, 2, 1]]> : tensor<1x5xi32>, outputs = dense<[[2, 0, 1]]> : tensor<1x3xi32>, offset = dense<0> : tensor<1xi32>, shift = 0 : i32, style = "cmvm", stages = dense<0> : tensor<2xi32>, latency = 0 : i32, acc_type = !qir.fixed<12,7>}> {layer = "fc"} : (tensor<2x!qir.fixed<8,3>>) -> tensor<1x!qir.fixed<4,2>>
  qir.output %1 : tensor<1x!qir.fixed<4,2>>
}
// CHECK: layer 'fc': the epilogue needs acc_type, relu, rounding and overflow together

// -----

qir.model @po2_weights {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.addergraph %0 nodes(dense<[[0, 0, 1, 2, 1], [2, 0, 0, 1, 1]]> : tensor<2x5xi32>) outputs(dense<[[3, 0, 1]]> : tensor<1x3xi32>) offset(dense<0> : tensor<1xi32>) shift 0 : i32 style "po2" stages(dense<0> : tensor<3xi32>) latency 0 : i32 {layer = "fc"} : tensor<2x!qir.fixed<8,3>> -> tensor<1x!qir.fixed<13,8>>
  qir.output %1 : tensor<1x!qir.fixed<13,8>>
}
// CHECK: layer 'fc': style 'po2' needs weights 0 or +-2^k
