// RUN: qir-opt %s -p 'qir-lower-dense{style=auto}' | filecheck %s
// RUN: qir-opt %s -p 'qir-lower-dense{style=auto layers="fc2:cmvm"}' | filecheck %s --check-prefix=OPT

// A `style` attribute on a layer op (what the precision configuration's `style` key writes) picks
// that layer's implementation over the pass's `style`; the pass's `layers=` option overrides both.
qir.model @hints {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[3, -5], [7, 1]]> : tensor<2x2xi32> : !qir.fixed<4,1>) {layer = "fc1"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<12,4>>
  %2 = qir.dense %1 weights(dense<[[3, -5], [7, 1]]> : tensor<2x2xi32> : !qir.fixed<4,1>) {layer = "fc2", style = "mac"} : tensor<2x!qir.fixed<12,4>> -> tensor<2x!qir.fixed<16,5>>
  qir.output %2 : tensor<2x!qir.fixed<16,5>>
}
// CHECK-LABEL: qir.model @hints
// CHECK:       qir.cmvm %0 {{.*}} style "cmvm" {layer = "fc1"}
// CHECK:       qir.cmvm %1 {{.*}} style "mac" {layer = "fc2"}
// OPT-LABEL:   qir.model @hints
// OPT:         qir.cmvm %0 {{.*}} style "cmvm" {layer = "fc1"}
// OPT:         qir.cmvm %1 {{.*}} style "cmvm" {layer = "fc2"}
