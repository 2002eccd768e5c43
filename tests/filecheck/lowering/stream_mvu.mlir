// RUN: qir-opt %s -p 'qir-stream-form,qir-stream-mvu' | filecheck %s
// RUN: qir-opt %s -p 'qir-stream-form,qir-stream-mvu' | qir-opt --print-op-generic | qir-opt | filecheck %s
// RUN: qir-opt %s -p 'qir-stream-form,qir-stream-mvu,qir-lower-dense{style=auto}' | filecheck %s --check-prefix=LOWER
// A folded dense after a Flatten of a stream (issue #12): qir-stream-form makes the Flatten a
// qir.collect and the dense the head of a map over its one beat; qir-stream-mvu turns collect +
// dense into qir.stream_mvu on the stream itself (reuse 5 cycles per beat of C = 2: 2 input chunks
// x 2 output groups, qir.folding.stream_fold), the relu and the second dense stay in a map.

qir.model @f {
  %0 = qir.input "x" : tensor<3x2x!qir.fixed<8,3>>
  %1 = qir.reshape %0 {layer = "flat"} : tensor<3x2x!qir.fixed<8,3>> -> tensor<6x!qir.fixed<8,3>>
  %2 = qir.dense %1 weights(dense<[[1, -2, 0], [3, 4, 1], [5, 7, -1], [0, 1, 2], [-8, 2, 3], [6, -3, 4]]> : tensor<6x3xi32> : !qir.fixed<4,1>) bias(dense<[1, 2, -3]> : tensor<3xi32> : !qir.fixed<4,1>) {layer = "fc1", reuse = 5 : i64} : tensor<6x!qir.fixed<8,3>> -> tensor<3x!qir.fixed<20,12>>
  %3 = qir.relu %2 {layer = "fc1"} : tensor<3x!qir.fixed<20,12>>
  %4 = qir.dense %3 weights(dense<[[1], [2], [-1]]> : tensor<3x1xi32> : !qir.fixed<4,1>) {layer = "fc2"} : tensor<3x!qir.fixed<20,12>> -> tensor<1x!qir.fixed<28,16>>
  qir.output %4 : tensor<1x!qir.fixed<28,16>>
}
// CHECK:      qir.model @f attributes {io = "stream"} {
// CHECK-NEXT:   %0 = qir.input "x" : tensor<3x2x!qir.fixed<8,3>>
// CHECK-NEXT:   %1 = qir.stream_mvu %0 matrix(dense<{{\[\[}}1, -2, 0], [3, 4, 1], [5, 7, -1], [0, 1, 2], [-8, 2, 3], [6, -3, 4]]> : tensor<6x3xi32>) offset(dense<[32, 64, -96]> : tensor<3xi32>) shift 3 : i32 style "mac" reuse 2 : i64 groups 2 : i64 impl "rom" {layer = "fc1"} : tensor<3x2x!qir.fixed<8,3>> -> tensor<3x!qir.fixed<20,12>>
// CHECK-NEXT:   %2 = qir.map %1 {layer = "fc1"} : tensor<3x!qir.fixed<20,12>> -> tensor<1x!qir.fixed<28,16>> {
// CHECK:          %{{[0-9]+}} = qir.input "beat" {{.*}}: tensor<3x!qir.fixed<20,12>>
// CHECK-NEXT:     %{{[0-9]+}} = qir.relu
// CHECK-NEXT:     %{{[0-9]+}} = qir.dense
// CHECK-NOT:    qir.collect
// LOWER:        qir.stream_mvu %0 {{.*}} style "mac" reuse 2 : i64 groups 2 : i64 impl "rom"
// LOWER:        qir.map %1
// LOWER:          qir.cmvm

// A relu/quantize between the Flatten and the dense (a QActivation) applies the same function to
// every element: it moves onto the stream's beats, a map before the qir.stream_mvu.
qir.model @g {
  %0 = qir.input "x" : tensor<3x2x!qir.fixed<8,3>>
  %1 = qir.reshape %0 {layer = "flat"} : tensor<3x2x!qir.fixed<8,3>> -> tensor<6x!qir.fixed<8,3>>
  %2 = qir.relu %1 {layer = "act"} : tensor<6x!qir.fixed<8,3>>
  %3 = qir.dense %2 weights(dense<[[1], [-2], [3], [4], [5], [7]]> : tensor<6x1xi32> : !qir.fixed<4,1>) {layer = "fc", reuse = 1 : i64} : tensor<6x!qir.fixed<8,3>> -> tensor<1x!qir.fixed<20,12>>
  qir.output %3 : tensor<1x!qir.fixed<20,12>>
}
// CHECK:      qir.model @g attributes {io = "stream"} {
// CHECK-NEXT:   %0 = qir.input "x" : tensor<3x2x!qir.fixed<8,3>>
// CHECK-NEXT:   %1 = qir.map %0 {layer = "act"} : tensor<3x2x!qir.fixed<8,3>> -> tensor<3x2x!qir.fixed<8,3>> {
// CHECK:          qir.relu %{{[0-9]+}} {layer = "act"} : tensor<2x!qir.fixed<8,3>>
// CHECK:        %{{[0-9]+}} = qir.stream_mvu %1 {{.*}} style "mac" reuse 1 : i64 groups 1 : i64 impl "rom" {layer = "fc"} : tensor<3x2x!qir.fixed<8,3>> -> tensor<1x!qir.fixed<20,12>>
// CHECK-NEXT:   qir.output
