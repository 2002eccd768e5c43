// RUN: qir-opt %s -p 'qir-infer-widths,qir-fold-auto{target-ii=4}' | filecheck %s --check-prefix=II4
// RUN: qir-opt %s -p 'qir-infer-widths,qir-fold-auto{reuse=8}' | filecheck %s --check-prefix=R8
// RUN: not qir-opt %s -p 'qir-infer-widths,qir-fold-auto{target-ii=2}' 2>&1 | filecheck %s --check-prefix=PIN

// Parallel form: every layer's cycles per image are its R.  fc1 is pinned (reuse = 3, what a
// `reuse` key in the precision configuration writes) and kept; fc2 gets the largest R that meets
// the target, at most its 2 x 3 weights (folded over inputs and outputs: one product per cycle),
// unless a smaller R is smaller and faster: R = 2 .. 4 are multiplexed adder graphs (80, 71, 71
// LUTs priced from the searched graph, R = 1: 61), so under target 4 it stays unfolded
// (fold_auto_dominance.mlir; reuse=R is not a target).
qir.model @par {
  %0 = qir.input "x" : tensor<5x!qir.fixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[3, -5], [7, 1], [1, 2], [-2, 3], [5, 5]]> : tensor<5x2xi32> : !qir.fixed<4,1>) {layer = "fc1", reuse = 3 : i64} : tensor<5x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<14,6>>
  %2 = qir.dense %1 weights(dense<[[3, -5, 1], [7, 1, 2]]> : tensor<2x3xi32> : !qir.fixed<4,1>) {layer = "fc2"} : tensor<2x!qir.fixed<14,6>> -> tensor<3x!qir.fixed<20,8>>
  qir.output %2 : tensor<3x!qir.fixed<20,8>>
}
// II4:  qir.dense %0 {{.*}} {layer = "fc1", reuse = 3 : i64}
// II4:  qir.dense %1 {{.*}} {layer = "fc2", reuse = 1 : i64}
// R8:   qir.dense %0 {{.*}} {layer = "fc1", reuse = 3 : i64}
// R8:   qir.dense %1 {{.*}} {layer = "fc2", reuse = 6 : i64}
// PIN:  qir-fold-auto: target II 2 cycles is impossible: layer 'fc1' is pinned at reuse 3 and takes 3 cycles per image
