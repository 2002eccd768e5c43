// RUN: qir-opt %s --split-input-file -p 'qir-lower-dense{style=auto}' | filecheck %s --check-prefix=MVU
// RUN: qir-opt %s --split-input-file -p 'qir-lower-dense{style=auto},qir-lower-cmvm' | filecheck %s --check-prefix=GRAPH
// A folded layer in an adder-graph style gets the cheapest offered implementation
// (qir.folding.choose_impl): the multiplexed adder graphs (impl "muxgraph", qir-lower-cmvm then
// builds qir.muxgraph: P phase graphs merged into one, R <= MUXGRAPH_MAX_R), the digit-serial
// graph (impl "digitserial", lower_dense_digitserial.mlir) or the weight ROM with multipliers
// (impl "rom", style mac).  An impl attribute pins it.

qir.model @small_r {
  %0 = qir.input "x" : tensor<4x!qir.fixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[3, -5, 7, 11], [13, 9, -3, 5], [-7, 3, 5, 9], [11, 13, -9, 3]]> : tensor<4x4xi32> : !qir.fixed<6,2>) bias(dense<[1, 2, -3, 0]> : tensor<4xi32> : !qir.fixed<6,2>) {layer = "fc", reuse = 2 : i64} : tensor<4x!qir.fixed<8,3>> -> tensor<4x!qir.fixed<17,8>>
  qir.output %1 : tensor<4x!qir.fixed<17,8>>
}
// R = 2: two phases (191 LUTs estimated) beat two digits (203) and the ROM (283 since its
// estimate follows Yosys, qir.folding ROM_*_LUT_PER_BIT; 180 before, when the ROM was chosen)
// MVU-LABEL: qir.model @small_r
// MVU:       qir.mvu %0 {{.*}} style "cmvm" reuse 2 : i64 impl "muxgraph" {layer = "fc"}
// GRAPH-LABEL: qir.model @small_r
// GRAPH:       qir.muxgraph %0 {{.*}} phases 2 : i64
// GRAPH-NOT:   qir.mvu

// -----

qir.model @three_phases {
  %0 = qir.input "x" : tensor<4x!qir.fixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[3, -5, 7, 11], [13, 9, -3, 5], [-7, 3, 5, 9], [11, 13, -9, 3]]> : tensor<4x4xi32> : !qir.fixed<6,2>) bias(dense<[1, 2, -3, 0]> : tensor<4xi32> : !qir.fixed<6,2>) {layer = "fc", reuse = 3 : i64} : tensor<4x!qir.fixed<8,3>> -> tensor<4x!qir.fixed<17,8>>
  qir.output %1 : tensor<4x!qir.fixed<17,8>>
}
// R = 3: three phases (0.97x the unfolded graph), cheaper than the ROM
// MVU-LABEL: qir.model @three_phases
// MVU:       qir.mvu %0 {{.*}} style "cmvm" reuse 3 : i64 impl "muxgraph" {layer = "fc"}
// GRAPH-LABEL: qir.model @three_phases
// GRAPH:       %1 = qir.muxgraph %0 nodes({{.*}}) outputs({{.*}}) offset({{.*}}) shift {{.*}} style "cmvm" reuse 3 : i64 phases 3 : i64 {layer = "fc"} : tensor<4x!qir.fixed<8,3>> -> tensor<4x!qir.fixed<17,8>>
// GRAPH-NOT:   qir.mvu

// -----

qir.model @pinned {
  %0 = qir.input "x" : tensor<4x!qir.fixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[3, -5, 7, 11], [13, 9, -3, 5], [-7, 3, 5, 9], [11, 13, -9, 3]]> : tensor<4x4xi32> : !qir.fixed<6,2>) bias(dense<[1, 2, -3, 0]> : tensor<4xi32> : !qir.fixed<6,2>) {layer = "fc", reuse = 2 : i64, impl = "muxgraph"} : tensor<4x!qir.fixed<8,3>> -> tensor<4x!qir.fixed<17,8>>
  qir.output %1 : tensor<4x!qir.fixed<17,8>>
}
// pinned: R = 2 as two phases (the unpinned choice too, @small_r)
// MVU-LABEL: qir.model @pinned
// MVU:       qir.mvu %0 {{.*}} style "cmvm" reuse 2 : i64 impl "muxgraph" {layer = "fc"}
// GRAPH-LABEL: qir.model @pinned
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
