// RUN: qir-opt %s -p qir-stream-conv | filecheck %s
// RUN: qir-opt %s -p 'qir-stream-conv,qir-stream-form,qir-lower-dense{style=auto}' | filecheck %s --check-prefix=LOWER
// A conv's reuse attribute (issue #12) goes onto the map body's dense, which qir-lower-dense folds
// (the cheapest offered implementation, qir.folding.choose_impl: for this small kernel, 2 outputs,
// two multiplexed phases at reuse 4).

qir.model @c {
  %0 = qir.input "x" : tensor<4x4x1x!qir.fixed<6,3>>
  %1 = qir.conv %0 weights(dense<[[[[1, 0]], [[2, 1]], [[0, 1]]], [[[1, 1]], [[-1, 2]], [[0, 0]]], [[[3, 1]], [[1, -1]], [[2, 2]]]]> : tensor<3x3x1x2xi32> : !qir.fixed<4,2>) strides [1, 1] dilations [1, 1] pads [1, 1, 1, 1] groups 1 {layer = "c1", reuse = 4 : i64} : tensor<4x4x1x!qir.fixed<6,3>> -> tensor<4x4x2x!qir.fixed<12,7>>
  qir.output %1 : tensor<4x4x2x!qir.fixed<12,7>>
}
// CHECK:      qir.model @c1_kernel {
// CHECK:        qir.dense %{{[0-9]+}} weights({{.*}}) {layer = "c1", reuse = 4 : i64}
// LOWER:      qir.model @c1_kernel {
// LOWER:        qir.mvu %{{[0-9]+}} matrix({{.*}} style "cmvm" reuse 4 : i64 impl "muxgraph" {layer = "c1"}
