// RUN: qir-opt %s --split-input-file -p qir-infer-widths | filecheck %s

// Over-wide dense results shrink to the exact interval of x @ W + b over the input type's range;
// relu follows its input; quantize results are explicit and stay.
qir.model @chain {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[1, -2], [3, 4]]> : tensor<2x2xi32> : !qir.fixed<4,1>) bias(dense<[1, 2]> : tensor<2xi32> : !qir.fixed<4,1>) {layer = "fc1"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<24,10>>
  %2 = qir.relu %1 {layer = "relu1"} : tensor<2x!qir.fixed<24,10>>
  %3 = qir.quantize %2 rounding "rnd_conv" overflow "sat" {layer = "relu1"} : tensor<2x!qir.fixed<24,10>> -> tensor<2x!qir.ufixed<6,0>>
  %4 = qir.dense %3 weights(dense<[[1], [1]]> : tensor<2x1xi32> : !qir.fixed<4,1>) {layer = "fc2"} : tensor<2x!qir.ufixed<6,0>> -> tensor<1x!qir.fixed<32,16>>
  qir.output %4 : tensor<1x!qir.fixed<32,16>>
}
// CHECK-LABEL: qir.model @chain
// CHECK:       %1 = qir.dense %0 {{.*}} -> tensor<2x!qir.fixed<11,3>>
// CHECK-NEXT:  %2 = qir.relu %1 {layer = "relu1"} : tensor<2x!qir.fixed<11,3>>
// CHECK-NEXT:  %3 = qir.quantize %2 {{.*}} : tensor<2x!qir.fixed<11,3>> -> tensor<2x!qir.ufixed<6,0>>
// Non-negative results become unsigned: 2 * 63 * 2^-6 * 2^-3 = 126 * 2^-9 fits ufixed<7,-2>.
// CHECK-NEXT:  %4 = qir.dense %3 {{.*}} -> tensor<1x!qir.ufixed<7,-2>>
// CHECK-NEXT:  qir.output %4 : tensor<1x!qir.ufixed<7,-2>>

// -----

// Corner: min * min.  The bias is finer than the products, so the products are aligned to it.
qir.model @corner {
  %0 = qir.input "x" : tensor<1x!qir.fixed<4,4>>
  %1 = qir.dense %0 weights(dense<[[-8]]> : tensor<1x1xi32> : !qir.fixed<4,1>) bias(dense<-1> : tensor<1xi32> : !qir.fixed<8,0>) : tensor<1x!qir.fixed<4,4>> -> tensor<1x!qir.fixed<40,20>>
  qir.output %1 : tensor<1x!qir.fixed<40,20>>
}
// x in [-8, 7], w = -1: x*w in [-7, 8] (min*min is the maximum); bias -2^-8: results
// [-7 - 2^-8, 8 - 2^-8] = [-1793, 2047] * 2^-8, exactly 12 signed bits.
// CHECK-LABEL: qir.model @corner
// CHECK:       %1 = qir.dense %0 {{.*}} -> tensor<1x!qir.fixed<12,4>>

// -----

// cmvm results are inferred the same way (frac = input frac + shift).
qir.model @cmvm {
  %0 = qir.input "x" : tensor<2x!qir.ufixed<4,0>>
  %1 = qir.cmvm %0 matrix(dense<[[3], [-5]]> : tensor<2x1xi32>) offset(dense<7> : tensor<1xi32>) shift 2 : i32 style "mac" : tensor<2x!qir.ufixed<4,0>> -> tensor<1x!qir.fixed<30,24>>
  qir.output %1 : tensor<1x!qir.fixed<30,24>>
}
// [0*3 + 15*-5 + 7, 15*3 + 0 + 7] = [-68, 52]: fixed<8,2> with 6 frac bits.
// CHECK-LABEL: qir.model @cmvm
// CHECK:       %1 = qir.cmvm %0 {{.*}} -> tensor<1x!qir.fixed<8,2>>
