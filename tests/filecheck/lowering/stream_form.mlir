// RUN: qir-opt %s -p qir-stream-form | filecheck %s

// Element-wise ops on a stream join a per-beat map; Flatten becomes qir.collect; the 1-D head is
// one map over a single beat; the model is marked io = "stream".
qir.model @f {
  %0 = qir.input "x" : tensor<2x2x3x!qir.fixed<6,3>>
  %1 = qir.relu %0 {layer = "r"} : tensor<2x2x3x!qir.fixed<6,3>>
  %2 = qir.reshape %1 {layer = "flat"} : tensor<2x2x3x!qir.fixed<6,3>> -> tensor<12x!qir.fixed<6,3>>
  %3 = qir.relu %2 {layer = "r2"} : tensor<12x!qir.fixed<6,3>>
  %4 = qir.quantize %3 rounding "trn" overflow "sat" {layer = "q"} : tensor<12x!qir.fixed<6,3>> -> tensor<12x!qir.fixed<4,3>>
  qir.output %4 : tensor<12x!qir.fixed<4,3>>
}
// CHECK:      qir.model @f attributes {io = "stream"} {
// CHECK-NEXT:   %0 = qir.input "x" : tensor<2x2x3x!qir.fixed<6,3>>
// CHECK-NEXT:   %1 = qir.map %0 {layer = "r"} : tensor<2x2x3x!qir.fixed<6,3>> -> tensor<2x2x3x!qir.fixed<6,3>> {
// CHECK-NEXT:     qir.model @r_beat {
// CHECK-NEXT:       %2 = qir.input "beat" {layer = "r"} : tensor<3x!qir.fixed<6,3>>
// CHECK-NEXT:       %3 = qir.relu %2 {layer = "r"} : tensor<3x!qir.fixed<6,3>>
// CHECK-NEXT:       qir.output %3 : tensor<3x!qir.fixed<6,3>>
// CHECK:        %2 = qir.collect %1 {layer = "flat"} : tensor<2x2x3x!qir.fixed<6,3>> -> tensor<12x!qir.fixed<6,3>>
// CHECK-NEXT:   %3 = qir.map %2 {layer = "r2"} : tensor<12x!qir.fixed<6,3>> -> tensor<12x!qir.fixed<4,3>> {
// CHECK-NEXT:     qir.model @r2_vector {
// CHECK-NEXT:       %4 = qir.input "beat" {layer = "r2"} : tensor<12x!qir.fixed<6,3>>
// CHECK-NEXT:       %5 = qir.relu %4 {layer = "r2"} : tensor<12x!qir.fixed<6,3>>
// CHECK-NEXT:       %6 = qir.quantize %5 rounding "trn" overflow "sat" {layer = "q"} : tensor<12x!qir.fixed<6,3>> -> tensor<12x!qir.fixed<4,3>>
// CHECK-NEXT:       qir.output %6 : tensor<12x!qir.fixed<4,3>>
// CHECK:        qir.output %3 : tensor<12x!qir.fixed<4,3>>
