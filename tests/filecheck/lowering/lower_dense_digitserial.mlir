// RUN: qir-opt %s --split-input-file -p 'qir-lower-dense{style=auto}' | filecheck %s --check-prefix=MVU
// RUN: qir-opt %s --split-input-file -p 'qir-lower-dense{style=auto},qir-lower-cmvm' | filecheck %s --check-prefix=GRAPH
// RUN: qir-opt %s --split-input-file -p 'qir-lower-dense{style=auto},qir-lower-cmvm' | qir-opt | filecheck %s --check-prefix=GRAPH
// Digit-serial adder graphs (impl "digitserial", issue #12): qir-lower-dense writes the qir.mvu
// with the impl (pinned here by the layer's impl attribute), qir-lower-cmvm searches the layer's
// adder graph on one k-bit digit of every input (inputs in [0, 2^k - 1]) and writes
// qir.digitserial with D digits (qir.digitserial.digit_shape: D = ceil(n / ceil(n / R))); the
// offset stays the layer's (the offset-binary correction is the hardware's); the text round-trips.

qir.model @two {
  %0 = qir.input "x" : tensor<4x!qir.fixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[3, -5, 7, 11], [13, 9, -3, 5], [-7, 3, 5, 9], [11, 13, -9, 3]]> : tensor<4x4xi32> : !qir.fixed<6,2>) bias(dense<[1, 2, -3, 0]> : tensor<4xi32> : !qir.fixed<6,2>) {impl = "digitserial", layer = "fc", reuse = 2 : i64} : tensor<4x!qir.fixed<8,3>> -> tensor<4x!qir.fixed<17,8>>
  qir.output %1 : tensor<4x!qir.fixed<17,8>>
}
// MVU-LABEL: qir.model @two
// MVU:       qir.mvu %0 {{.*}} offset(dense<[32, 64, -96, 0]> : tensor<4xi32>) shift 4 : i32 style "cmvm" reuse 2 : i64 impl "digitserial" {layer = "fc"}
// GRAPH-LABEL: qir.model @two
// GRAPH:       %1 = qir.digitserial %0 nodes({{.*}}) outputs({{.*}}) offset(dense<[32, 64, -96, 0]> : tensor<4xi32>) shift 4 : i32 style "cmvm" reuse 2 : i64 digits 2 : i64 {layer = "fc"} : tensor<4x!qir.fixed<8,3>> -> tensor<4x!qir.fixed<17,8>>
// GRAPH-NOT:   qir.mvu

// -----

// R = 3 on 8 bits: digits of ceil(8 / 3) = 3 bits, ceil(8 / 3) = 3 digits; R = 5: 2-bit digits,
// four of them (the fifth cycle idles); unsigned input (relu output)
qir.model @uneven {
  %0 = qir.input "x" : tensor<3x!qir.ufixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[1, -2], [3, 4], [5, 7]]> : tensor<3x2xi32> : !qir.fixed<4,1>) {impl = "digitserial", layer = "a", reuse = 3 : i64} : tensor<3x!qir.ufixed<8,3>> -> tensor<2x!qir.fixed<14,6>>
  %2 = qir.dense %0 weights(dense<[[1, -2], [3, 4], [5, 7]]> : tensor<3x2xi32> : !qir.fixed<4,1>) {impl = "digitserial", layer = "b", reuse = 5 : i64} : tensor<3x!qir.ufixed<8,3>> -> tensor<2x!qir.fixed<14,6>>
  qir.output %2 : tensor<2x!qir.fixed<14,6>>
}
// GRAPH-LABEL: qir.model @uneven
// GRAPH:       qir.digitserial %0 {{.*}} reuse 3 : i64 digits 3 : i64 {layer = "a"} : tensor<3x!qir.ufixed<8,3>>
// GRAPH:       qir.digitserial %0 {{.*}} reuse 5 : i64 digits 4 : i64 {layer = "b"} : tensor<3x!qir.ufixed<8,3>>
