// RUN: qir-opt %s -p qir-stream-form | qir-opt | filecheck %s

// An add/concat of two different streams (here a per-beat relu branch and a 2x2 window branch of
// one input) becomes a qir.join whose two-input body concatenates one beat of each (axis 0 of
// the beat); the op survives a print/parse round trip.
qir.model @j {
  %0 = qir.input "x" : tensor<3x3x2x!qir.fixed<6,3>>
  %1 = qir.window %0 window [2, 2] strides [1, 1] dilations [1, 1] pads [0, 0, 1, 1] fill 0 {layer = "w"} : tensor<3x3x2x!qir.fixed<6,3>> -> tensor<3x3x8x!qir.fixed<6,3>>
  %2 = qir.relu %0 {layer = "r"} : tensor<3x3x2x!qir.fixed<6,3>>
  %3 = qir.concat %2, %1 axis 2 {layer = "cat"} : tensor<3x3x2x!qir.fixed<6,3>>, tensor<3x3x8x!qir.fixed<6,3>> -> tensor<3x3x10x!qir.fixed<6,3>>
  qir.output %3 : tensor<3x3x10x!qir.fixed<6,3>>
}
// CHECK:      qir.model @j attributes {io = "stream"} {
// CHECK:        %1 = qir.map %0 {layer = "r"}
// CHECK:        %2 = qir.window %0 window [2, 2]
// CHECK-NEXT:   %3 = qir.join %1, %2 {layer = "cat"} : tensor<3x3x2x!qir.fixed<6,3>>, tensor<3x3x8x!qir.fixed<6,3>> -> tensor<3x3x10x!qir.fixed<6,3>> {
// CHECK-NEXT:     qir.model @cat_beat {
// CHECK-NEXT:       %4 = qir.input "lhs" {layer = "cat"} : tensor<2x!qir.fixed<6,3>>
// CHECK-NEXT:       %5 = qir.input "rhs" {layer = "cat"} : tensor<8x!qir.fixed<6,3>>
// CHECK-NEXT:       %6 = qir.concat %4, %5 axis 0 {layer = "cat"} : tensor<2x!qir.fixed<6,3>>, tensor<8x!qir.fixed<6,3>> -> tensor<10x!qir.fixed<6,3>>
// CHECK-NEXT:       qir.output %6 : tensor<10x!qir.fixed<6,3>>
// CHECK:        qir.output %3 : tensor<3x3x10x!qir.fixed<6,3>>
