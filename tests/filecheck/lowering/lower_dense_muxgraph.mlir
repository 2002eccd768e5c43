// RUN: qir-opt %s --split-input-file -p 'qir-lower-dense{style=auto}' | filecheck %s --check-prefix=MVU
// RUN: qir-opt %s --split-input-file -p 'qir-lower-dense{style=auto},qir-lower-cmvm' | filecheck %s --check-prefix=GRAPH
// A folded layer in an adder-graph style gets the cheaper implementation (qir.folding.choose_impl):
// at small R the multiplexed adder graphs (impl "muxgraph", qir-lower-cmvm then builds qir.muxgraph:
// R phase graphs merged into one), at large R (beyond MUXGRAPH_MAX_R, or more phases than outputs)
// the weight ROM with multipliers (impl "rom", style mac).

qir.model @small_r {
  %0 = qir.input "x" : tensor<4x!qir.fixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[3, -5, 7, 11], [13, 9, -3, 5], [-7, 3, 5, 9], [11, 13, -9, 3]]> : tensor<4x4xi32> : !qir.fixed<6,2>) bias(dense<[1, 2, -3, 0]> : tensor<4xi32> : !qir.fixed<6,2>) {layer = "fc", reuse = 2 : i64} : tensor<4x!qir.fixed<8,3>> -> tensor<4x!qir.fixed<17,8>>
  qir.output %1 : tensor<4x!qir.fixed<17,8>>
}
// MVU-LABEL: qir.model @small_r
// MVU:       qir.mvu %0 {{.*}} style "cmvm" reuse 2 : i64 impl "muxgraph" {layer = "fc"}
// GRAPH-LABEL: qir.model @small_r
// GRAPH:       %1 = qir.muxgraph %0 nodes({{.*}}) outputs({{.*}}) offset({{.*}}) shift {{.*}} style "cmvm" reuse 2 : i64 phases 2 : i64 {layer = "fc"} : tensor<4x!qir.fixed<8,3>> -> tensor<4x!qir.fixed<17,8>>
// GRAPH-NOT:   qir.mvu

// -----

qir.model @large_r {
  %0 = qir.input "x" : tensor<4x!qir.fixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[3, -5, 7, 11], [13, 9, -3, 5], [-7, 3, 5, 9], [11, 13, -9, 3]]> : tensor<4x4xi32> : !qir.fixed<6,2>) bias(dense<[1, 2, -3, 0]> : tensor<4xi32> : !qir.fixed<6,2>) {layer = "fc", reuse = 8 : i64} : tensor<4x!qir.fixed<8,3>> -> tensor<4x!qir.fixed<17,8>>
  qir.output %1 : tensor<4x!qir.fixed<17,8>>
}
// MVU-LABEL: qir.model @large_r
// MVU:       qir.mvu %0 {{.*}} style "mac" reuse 8 : i64 impl "rom" {layer = "fc"}
// GRAPH-LABEL: qir.model @large_r
// GRAPH:       qir.mvu %0 {{.*}} impl "rom"
// GRAPH-NOT:   qir.muxgraph
