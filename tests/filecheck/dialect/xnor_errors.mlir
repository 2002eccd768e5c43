// RUN: qir-opt %s --split-input-file --verify-diagnostics | filecheck %s
// Verifier errors of qir.xnor and qir.threshold.

qir.model @shape {
  %0 = qir.input "x" : tensor<3x!qir.fixed<2,2>>
  %1 = qir.xnor %0 weights(dense<[[1, 0], [0, 1]]> : tensor<2x2xi32>) one 1 zero -1 {layer = "fc"} : tensor<3x!qir.fixed<2,2>> -> tensor<2x!qir.ufixed<2,2>>
  qir.output %1 : tensor<2x!qir.ufixed<2,2>>
}
// CHECK: layer 'fc': weights shape (2, 2) != (2, 3) (outputs x inputs)

// -----

qir.model @bits {
  %0 = qir.input "x" : tensor<2x!qir.fixed<2,2>>
  %1 = qir.xnor %0 weights(dense<[[1, -1]]> : tensor<1x2xi32>) one 1 zero -1 {layer = "fc"} : tensor<2x!qir.fixed<2,2>> -> tensor<1x!qir.ufixed<2,2>>
  qir.output %1 : tensor<1x!qir.ufixed<2,2>>
}
// CHECK: layer 'fc': weights must be bits (0 = -, 1 = +)

// -----

qir.model @codes {
  %0 = qir.input "x" : tensor<2x!qir.fixed<2,2>>
  %1 = qir.xnor %0 weights(dense<[[1, 0]]> : tensor<1x2xi32>) one 1 zero 1 {layer = "fc"} : tensor<2x!qir.fixed<2,2>> -> tensor<1x!qir.ufixed<2,2>>
  qir.output %1 : tensor<1x!qir.ufixed<2,2>>
}
// CHECK: layer 'fc': the codes one 1 and zero 1 must be two different mantissas of the input type fixed<2,2>

// -----

qir.model @code_range {
  %0 = qir.input "x" : tensor<2x!qir.ufixed<1,1>>
  %1 = qir.xnor %0 weights(dense<[[1, 0]]> : tensor<1x2xi32>) one 2 zero 0 {layer = "fc"} : tensor<2x!qir.ufixed<1,1>> -> tensor<1x!qir.ufixed<2,2>>
  qir.output %1 : tensor<1x!qir.ufixed<2,2>>
}
// CHECK: layer 'fc': the codes one 2 and zero 0 must be two different mantissas of the input type ufixed<1,1>

// -----

qir.model @narrow {
  %0 = qir.input "x" : tensor<4x!qir.fixed<2,2>>
  %1 = qir.xnor %0 weights(dense<1> : tensor<1x4xi32>) one 1 zero -1 {layer = "fc"} : tensor<4x!qir.fixed<2,2>> -> tensor<1x!qir.ufixed<2,2>>
  qir.output %1 : tensor<1x!qir.ufixed<2,2>>
}
// CHECK: layer 'fc': result type ufixed<2,2> cannot hold the exact results [0.0, 4.0]; it needs at least ufixed<3,3> (run qir-infer-widths)

// -----

qir.model @threshold_range {
  %0 = qir.input "x" : tensor<2x!qir.fixed<2,2>>
  %1 = qir.xnor %0 weights(dense<[[1, 0]]> : tensor<1x2xi32>) one 1 zero -1 thresholds(dense<4> : tensor<1xi32>) below(dense<-1> : tensor<1xi32>) above(dense<1> : tensor<1xi32>) {layer = "fc"} : tensor<2x!qir.fixed<2,2>> -> tensor<1x!qir.fixed<2,2>>
  qir.output %1 : tensor<1x!qir.fixed<2,2>>
}
// CHECK: layer 'fc': thresholds must lie in [0, 3] (0: always above, 3: always below)

// -----

qir.model @code_type {
  %0 = qir.input "x" : tensor<2x!qir.fixed<2,2>>
  %1 = qir.xnor %0 weights(dense<[[1, 0]]> : tensor<1x2xi32>) one 1 zero -1 thresholds(dense<1> : tensor<1xi32>) below(dense<-1> : tensor<1xi32>) above(dense<1> : tensor<1xi32>) {layer = "fc"} : tensor<2x!qir.fixed<2,2>> -> tensor<1x!qir.ufixed<1,1>>
  qir.output %1 : tensor<1x!qir.ufixed<1,1>>
}
// CHECK: layer 'fc' below: mantissas [-1, -1] do not fit ufixed<1,1> [0, 1]

// -----

qir.model @threshold_code {
  %0 = qir.input "x" : tensor<2x!qir.fixed<2,2>>
  %1 = qir.threshold %0 thresholds(dense<3> : tensor<1xi32>) below(dense<0> : tensor<1xi32>) above(dense<1> : tensor<1xi32>) {layer = "t"} : tensor<2x!qir.fixed<2,2>> -> tensor<2x!qir.ufixed<1,1>>
  qir.output %1 : tensor<2x!qir.ufixed<1,1>>
}
// CHECK: layer 't': thresholds must lie in [-2, 2] (input mantissas of fixed<2,2>, or one past the largest)

// -----

qir.model @threshold_shape {
  %0 = qir.input "x" : tensor<3x!qir.fixed<2,2>>
  %1 = qir.threshold %0 thresholds(dense<[0, 1]> : tensor<2xi32>) below(dense<0> : tensor<1xi32>) above(dense<1> : tensor<1xi32>) {layer = "t"} : tensor<3x!qir.fixed<2,2>> -> tensor<3x!qir.ufixed<1,1>>
  qir.output %1 : tensor<3x!qir.ufixed<1,1>>
}
// CHECK: layer 't': thresholds shape (2,) must be (3,) or (1,)

// -----

qir.model @threshold_above {
  %0 = qir.input "x" : tensor<3x!qir.fixed<2,2>>
  %1 = qir.threshold %0 thresholds(dense<0> : tensor<1xi32>) below(dense<0> : tensor<1xi32>) above(dense<2> : tensor<1xi32>) {layer = "t"} : tensor<3x!qir.fixed<2,2>> -> tensor<3x!qir.ufixed<1,1>>
  qir.output %1 : tensor<3x!qir.ufixed<1,1>>
}
// CHECK: layer 't' above: mantissas [2, 2] do not fit ufixed<1,1> [0, 1]
