// RUN: qir-opt %s -p 'qir-stream-form,qir-stream-mvu' | filecheck %s
// RUN: qir-opt %s -p 'qir-stream-form,qir-stream-mvu' | qir-opt --print-op-generic | qir-opt | filecheck %s
// RUN: qir-opt %s -p 'qir-stream-form,qir-stream-mvu,qir-lower-dense{style=auto},qir-fold-threshold' | filecheck %s --check-prefix=FOLD
// The xnor form of qir.stream_mvu (issue #12): a binary dense (weights +-2 = +-1 x 2) after a
// Flatten of a two-valued stream (the {0, 1} input ufixed<1,1>) is consumed beat by beat: the
// weight bits (1 = +) transposed into the matrix, the input codes one 1 / zero 0, the popcount
// result ufixed<3,3> (n_in = 6); lowering/xnor.py's exact scale y = 2 p + (-2 N0 + b), N0 = 2, 3
// negative weights: bias -3, -7, heads the map after it.  reuse 5 on C = 2: 2 input chunks x 2 output groups.  qir-fold-threshold
// then folds that scale and the sign chain (scale x2 + 1, sat_sym quantize to {-1, +1}) into
// the op's thresholds (2 p - 3 >= 0 from p = 2, 2 p - 7 >= 0 from p = 4), and the map, now
// empty, goes.

qir.model @b {
  %0 = qir.input "x" : tensor<3x2x!qir.ufixed<1,1>>
  %1 = qir.reshape %0 {layer = "flat"} : tensor<3x2x!qir.ufixed<1,1>> -> tensor<6x!qir.ufixed<1,1>>
  %2 = qir.dense %1 weights(dense<[[2, -2], [2, 2], [-2, 2], [2, -2], [-2, -2], [2, 2]]> : tensor<6x2xi32> : !qir.fixed<3,3>) bias(dense<[1, -1]> : tensor<2xi32> : !qir.fixed<3,3>) {layer = "fc1", reuse = 5 : i64} : tensor<6x!qir.ufixed<1,1>> -> tensor<2x!qir.fixed<6,6>>
  %3 = qir.scale %2 scale(dense<2> : tensor<1xi32> : !qir.ufixed<2,2>) bias(dense<1> : tensor<1xi32> : !qir.ufixed<1,1>) {layer = "act"} : tensor<2x!qir.fixed<6,6>> -> tensor<2x!qir.fixed<8,8>>
  %4 = qir.quantize %3 rounding "trn" overflow "sat_sym" {layer = "act"} : tensor<2x!qir.fixed<8,8>> -> tensor<2x!qir.fixed<2,2>>
  qir.output %4 : tensor<2x!qir.fixed<2,2>>
}
// CHECK:      qir.model @b attributes {io = "stream"} {
// CHECK-NEXT:   %0 = qir.input "x" : tensor<3x2x!qir.ufixed<1,1>>
// CHECK-NEXT:   %1 = qir.stream_mvu %0 matrix(dense<{{\[\[}}1, 0], [1, 1], [0, 1], [1, 0], [0, 0], [1, 1]]> : tensor<6x2xi32>) offset(dense<0> : tensor<2xi32>) shift 0 : i64 style "xnor" one 1 : i64 zero 0 : i64 reuse 2 : i64 groups 2 : i64 impl "rom" {layer = "fc1"} : tensor<3x2x!qir.ufixed<1,1>> -> tensor<2x!qir.ufixed<3,3>>
// CHECK-NEXT:   %2 = qir.map %1 {layer = "fc1"} : tensor<2x!qir.ufixed<3,3>> -> tensor<2x!qir.fixed<2,2>> {
// CHECK:          %{{[0-9]+}} = qir.input "beat" {{.*}}: tensor<2x!qir.ufixed<3,3>>
// CHECK-NEXT:     %{{[0-9]+}} = qir.scale %{{[0-9]+}} scale(dense<2> : tensor<2xi32> : !qir.ufixed<2,2>) bias(dense<[-3, -7]> : tensor<2xi32> : !qir.fixed<4,4>) {layer = "fc1"}
// CHECK-NEXT:     %{{[0-9]+}} = qir.scale
// CHECK-NEXT:     %{{[0-9]+}} = qir.quantize
// CHECK-NOT:    qir.collect
// FOLD:         %1 = qir.stream_mvu %0 {{.*}} style "xnor" one 1 : i64 zero 0 : i64 thresholds(dense<[2, 4]> : tensor<2xi32>) below(dense<-1> : tensor<2xi32>) above(dense<1> : tensor<2xi32>) reuse 2 : i64 groups 2 : i64 impl "rom" {layer = "fc1"} : tensor<3x2x!qir.ufixed<1,1>> -> tensor<2x!qir.fixed<2,2>>
// FOLD-NEXT:    qir.output %1 : tensor<2x!qir.fixed<2,2>>
