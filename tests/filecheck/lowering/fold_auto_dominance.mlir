// RUN: qir-opt %s -p 'qir-infer-widths,qir-fold-auto{target-ii=4}' | filecheck %s --check-prefix=II4
// RUN: qir-opt %s -p 'qir-infer-widths,qir-fold-auto{target-ii=10}' | filecheck %s --check-prefix=II10
// RUN: qir-opt %s -p 'qir-infer-widths,qir-fold-auto{target-ii=1}' | filecheck %s --check-prefix=II1
// RUN: qir-opt %s -p 'qir-infer-widths,qir-fold-auto{target-ii=32}' | filecheck %s --check-prefix=II32

// The dominance rule (issue #12): a layer never gets an R that is bigger and slower than a
// smaller one.  This 32 -> 3 dense costs 857 LUTs unfolded (the searched adder graph) and,
// folded (qir.folding.estimate; digit-serial priced from the same searched graph at the digit
// width), 706 at R = 2, 572 at R = 3, 506 at R = 4 and 5, 435 at R = 6 .. 10 (digit-serial:
// 12-bit inputs in 6, 4, 3, 2 digits), bit-serial at R = 12 .. 32; the ROM at R = 32 is 567 since
// its estimate follows Yosys (qir.folding ROM_*_LUT_PER_BIT; 321 before), more than bit-serial.
// So a target of 1 cycle keeps it unfolded, 4 folds it by 4, 10 by 6 (R = 7 .. 10 are the same
// digits, slower), 32 by 12 (bit-serial: R = 13 .. 32 are the same, slower).
qir.model @dom {
  %0 = qir.input "x" : tensor<32x!qir.fixed<12,7>>
  %1 = qir.dense %0 weights(dense<[[0, 0, 2], [3, -3, -2], [2, 3, -2], [-1, 3, -1], [-2, 2, -2], [-1, 1, 0], [-3, -3, 3], [2, 2, 0], [2, -1, 0], [2, -3, -1], [-3, 0, 3], [-3, -1, -1], [3, -2, 0], [-2, -3, 2], [-3, -2, 0], [0, -3, 3], [2, 3, -3], [2, -1, 0], [3, -2, 2], [-2, -1, 3], [-1, 0, -1], [-3, -1, 1], [0, 2, -1], [1, 2, 3], [-1, -3, 2], [0, 3, 0], [-1, -3, 0], [1, 2, 2], [-2, 1, 2], [-2, -1, 2], [1, 0, 1], [0, 3, 2]]> : tensor<32x3xi32> : !qir.fixed<3,2>) {layer = "fc"} : tensor<32x!qir.fixed<12,7>> -> tensor<3x!qir.fixed<24,14>>
  qir.output %1 : tensor<3x!qir.fixed<24,14>>
}
// II1:  qir.dense %0 {{.*}} {layer = "fc", reuse = 1 : i64}
// II4:  qir.dense %0 {{.*}} {layer = "fc", reuse = 4 : i64}
// II10: qir.dense %0 {{.*}} {layer = "fc", reuse = 6 : i64}
// II32: qir.dense %0 {{.*}} {layer = "fc", reuse = 12 : i64}
