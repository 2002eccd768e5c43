// RUN: qir-opt %s -p 'qir-infer-widths,qir-stream-conv,qir-stream-form,qir-fold-auto{target-ii=36}' | filecheck %s --check-prefix=II36
// RUN: qir-opt %s -p 'qir-infer-widths,qir-stream-conv,qir-stream-form,qir-fold-auto{target-ii=100}' | filecheck %s --check-prefix=II100
// RUN: qir-opt %s -p 'qir-infer-widths,qir-stream-conv,qir-stream-form,qir-fold-auto{reuse=5}' | filecheck %s --check-prefix=R5
// RUN: qir-opt %s -p 'qir-infer-widths,qir-stream-conv,qir-stream-form,qir-fold-auto{max-luts=1000000000}' | filecheck %s --check-prefix=FAST
// RUN: qir-opt %s -p 'qir-infer-widths,qir-stream-conv,qir-stream-form,qir-fold-auto' | filecheck %s --check-prefix=NONE
// RUN: not qir-opt %s -p 'qir-infer-widths,qir-stream-conv,qir-stream-form,qir-fold-auto{target-ii=35}' 2>&1 | filecheck %s --check-prefix=FLOOR
// RUN: not qir-opt %s -p 'qir-infer-widths,qir-stream-conv,qir-stream-form,qir-fold-auto{max-luts=1}' 2>&1 | filecheck %s --check-prefix=NOFIT
// RUN: not qir-opt %s -p 'qir-fold-auto{reuse=2 target-ii=4}' 2>&1 | filecheck %s --check-prefix=BOTH

// Stream form: a 3x3 same-padded conv on a 4x4 map (its window walks the 6x6 padded map: 36
// cycles per image, the floor of the II; its kernel map sees 16 beats per image), a flatten and a
// 32 -> 3 dense layer, which consumes the flattened stream beat by beat (qir-stream-mvu: 16 beats
// of 2).  A target II gives every layer the largest R with beats x R <= target (R at most the
// layer's inputs x outputs: 18 for the kernel; C x n_out = 6 cycles per beat for the dense),
// unless a smaller R is smaller and faster (fold_auto_dominance.mlir; at target 100 the kernel,
// 9 -> 2 with small weights, stays at R = 1: its two outputs allow only two phases, which cost
// more than the unfolded graph, and the ROM costs 122+ LUTs at R = 2 .. 6) or the stream cycle
// model says the pipeline would miss the target (at 36 = the window's walk: both stay at R = 1).
qir.model @fa {
  %0 = qir.input "x" : tensor<4x4x1x!qir.fixed<6,3>>
  %1 = qir.conv %0 weights(dense<[[[[1, 0]], [[2, 1]], [[0, 1]]], [[[1, 1]], [[-1, 2]], [[0, 0]]], [[[3, 1]], [[1, -1]], [[2, 2]]]]> : tensor<3x3x1x2xi32> : !qir.fixed<4,2>) strides [1, 1] dilations [1, 1] pads [1, 1, 1, 1] groups 1 {layer = "c1"} : tensor<4x4x1x!qir.fixed<6,3>> -> tensor<4x4x2x!qir.fixed<12,7>>
  %2 = qir.reshape %1 {layer = "flat"} : tensor<4x4x2x!qir.fixed<12,7>> -> tensor<32x!qir.fixed<12,7>>
  %3 = qir.dense %2 weights(dense<[[0, 0, 2], [3, -3, -2], [2, 3, -2], [-1, 3, -1], [-2, 2, -2], [-1, 1, 0], [-3, -3, 3], [2, 2, 0], [2, -1, 0], [2, -3, -1], [-3, 0, 3], [-3, -1, -1], [3, -2, 0], [-2, -3, 2], [-3, -2, 0], [0, -3, 3], [2, 3, -3], [2, -1, 0], [3, -2, 2], [-2, -1, 3], [-1, 0, -1], [-3, -1, 1], [0, 2, -1], [1, 2, 3], [-1, -3, 2], [0, 3, 0], [-1, -3, 0], [1, 2, 2], [-2, 1, 2], [-2, -1, 2], [1, 0, 1], [0, 3, 2]]> : tensor<32x3xi32> : !qir.fixed<3,2>) {layer = "fc"} : tensor<32x!qir.fixed<12,7>> -> tensor<3x!qir.fixed<24,14>>
  qir.output %3 : tensor<3x!qir.fixed<24,14>>
}
// II36:     qir.dense {{.*}} {layer = "c1", reuse = 1 : i64} : tensor<9x
// II36:     qir.dense {{.*}} {layer = "fc", reuse = 1 : i64} : tensor<32x
// II100:    qir.dense {{.*}} {layer = "c1", reuse = 1 : i64} : tensor<9x
// II100:    qir.dense {{.*}} {layer = "fc", reuse = 6 : i64} : tensor<32x
// R5:       qir.dense {{.*}} {layer = "c1", reuse = 5 : i64} : tensor<9x
// R5:       qir.dense {{.*}} {layer = "fc", reuse = 5 : i64} : tensor<32x
// FAST:     qir.dense {{.*}} {layer = "c1", reuse = 1 : i64} : tensor<9x
// FAST:     qir.dense {{.*}} {layer = "fc", reuse = 1 : i64} : tensor<32x
// NONE-NOT: reuse
// FLOOR:    qir-fold-auto: target II 35 cycles is impossible: the window of layer 'c1' walks 36 steps per image (give target-ii=36 or more)
// NOFIT:    qir-fold-auto: max-luts=1 is impossible: even folded as far as each layer can be (II 288 cycles) the layers are estimated at
// BOTH:     qir-fold-auto: give one of reuse, target-ii, max-luts (got reuse, target-ii)
