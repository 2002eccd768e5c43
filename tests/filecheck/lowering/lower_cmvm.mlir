// RUN: qir-opt %s --split-input-file -p qir-infer-widths,qir-lower-cmvm | filecheck %s

// 3*x0 - 5*x1 + 7 and x0 + 4*x1 in CSD: x0 + (x1 << 2) is built once and shared; the first
// output is 7 - (x1*5 - x0*3), its offset added after the tree.
qir.model @small {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.cmvm %0 matrix(dense<[[3, 1], [-5, 4]]> : tensor<2x2xi32>) offset(dense<[7, 0]> : tensor<2xi32>) shift 2 : i32 style "cmvm" {layer = "fc1"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<13,6>>
  qir.output %1 : tensor<2x!qir.fixed<13,6>>
}
// CHECK-LABEL: qir.model @small
// CHECK:       %1 = qir.addergraph %0 nodes(dense<{{\[\[}}0, 0, 1, 2, 1], [1, 0, 0, 2, -1], [2, 0, 3, 0, 1]]> : tensor<3x5xi32>)
// CHECK-SAME:  outputs(dense<{{\[\[}}4, 0, -1], [2, 0, 1]]> : tensor<2x3xi32>) offset(dense<[7, 0]> : tensor<2xi32>)
// CHECK-SAME:  shift 2 : i32 style "cmvm" stages(dense<0> : tensor<5xi32>) latency 0 : i32 {layer = "fc1"}
// CHECK-SAME:  : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<12,5>>
// CHECK-NOT:   qir.cmvm

// -----

// relu then quantize after the product become the addergraph's epilogue; the sums keep their
// exact type in acc_type.
qir.model @fused {
  %0 = qir.input "x" : tensor<2x!qir.fixed<8,3>>
  %1 = qir.cmvm %0 matrix(dense<[[3, 1], [-5, 4]]> : tensor<2x2xi32>) offset(dense<[7, 0]> : tensor<2xi32>) shift 2 : i32 style "cmvm" {layer = "fc1"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<13,6>>
  %2 = qir.relu %1 {layer = "relu1"} : tensor<2x!qir.fixed<13,6>>
  %3 = qir.quantize %2 rounding "rnd_conv" overflow "sat" {layer = "relu1"} : tensor<2x!qir.fixed<13,6>> -> tensor<2x!qir.ufixed<4,2>>
  qir.output %3 : tensor<2x!qir.ufixed<4,2>>
}
// CHECK-LABEL: qir.model @fused
// CHECK:       %1 = qir.addergraph %0 {{.*}} epilogue(!qir.fixed<12,5> relu true rounding "rnd_conv" overflow "sat") {layer = "fc1"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.ufixed<4,2>>
// CHECK-NEXT:  qir.output %1 : tensor<2x!qir.ufixed<4,2>>

// -----

// po2 weights: shifts and one adder per extra term, no constant multiplier; the cheapest adder
// first (x0 + 8 x2 overlaps in one bit, x0 - 4 x1 in two).
qir.model @po2 {
  %0 = qir.input "x" : tensor<3x!qir.ufixed<4,0>>
  %1 = qir.cmvm %0 matrix(dense<[[1], [-4], [8]]> : tensor<3x1xi32>) offset(dense<0> : tensor<1xi32>) shift 0 : i32 style "po2" : tensor<3x!qir.ufixed<4,0>> -> tensor<1x!qir.fixed<10,6>>
  qir.output %1 : tensor<1x!qir.fixed<10,6>>
}
// CHECK-LABEL: qir.model @po2
// CHECK:       qir.addergraph %0 nodes(dense<{{\[\[}}0, 0, 2, 3, 1], [3, 0, 1, 2, -1]]> : tensor<2x5xi32>) outputs(dense<{{\[\[}}4, 0, 1]]> : tensor<1x3xi32>) {{.*}} style "po2" {{.*}} -> tensor<1x!qir.fixed<9,5>>

// -----

// mac products are left alone.
qir.model @mac {
  %0 = qir.input "x" : tensor<1x!qir.fixed<4,4>>
  %1 = qir.cmvm %0 matrix(dense<[[3]]> : tensor<1x1xi32>) offset(dense<0> : tensor<1xi32>) shift 0 : i32 style "mac" : tensor<1x!qir.fixed<4,4>> -> tensor<1x!qir.fixed<6,6>>
  qir.output %1 : tensor<1x!qir.fixed<6,6>>
}
// CHECK-LABEL: qir.model @mac
// CHECK:       qir.cmvm
// CHECK-NOT:   qir.addergraph
