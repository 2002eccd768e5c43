// RUN: qir-opt %s | filecheck %s
// RUN: qir-opt %s --print-op-generic | qir-opt | filecheck %s
// Custom -> generic -> custom gives the custom form back.

qir.model @net {
  %0 = qir.input "x" {layer = "in"} : tensor<2x!qir.fixed<8,3>>
  %1 = qir.dense %0 weights(dense<[[1, -2], [3, 4]]> : tensor<2x2xi32> : !qir.fixed<4,1>) bias(dense<[1, 2]> : tensor<2xi32> : !qir.fixed<4,1>) {layer = "fc1"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<11,3>>
  %2 = qir.relu %1 {layer = "relu1"} : tensor<2x!qir.fixed<11,3>>
  %3 = qir.quantize %2 rounding "rnd_conv" overflow "sat" {layer = "relu1"} : tensor<2x!qir.fixed<11,3>> -> tensor<2x!qir.ufixed<6,0>>
  %4 = qir.dense %3 weights(dense<[[1], [-1]]> : tensor<2x1xi32> : !qir.fixed<4,-2>) {layer = "fc2"} : tensor<2x!qir.ufixed<6,0>> -> tensor<1x!qir.fixed<7,-5>>
  %5 = qir.cmvm %4 matrix(dense<[[3]]> : tensor<1x1xi32>) offset(dense<-1> : tensor<1xi32>) shift 0 : i32 style "mac" : tensor<1x!qir.fixed<7,-5>> -> tensor<1x!qir.fixed<10,-2>>
  %6 = qir.reg %5 stage 1 : i32 : tensor<1x!qir.fixed<10,-2>>
  qir.output %6 : tensor<1x!qir.fixed<10,-2>>
}

// CHECK:      qir.model @net {
// CHECK-NEXT:   %0 = qir.input "x" {layer = "in"} : tensor<2x!qir.fixed<8,3>>
// CHECK-NEXT:   %1 = qir.dense %0 weights(dense<{{\[\[}}1, -2], [3, 4]]> : tensor<2x2xi32> : !qir.fixed<4,1>) bias(dense<[1, 2]> : tensor<2xi32> : !qir.fixed<4,1>) {layer = "fc1"} : tensor<2x!qir.fixed<8,3>> -> tensor<2x!qir.fixed<11,3>>
// CHECK-NEXT:   %2 = qir.relu %1 {layer = "relu1"} : tensor<2x!qir.fixed<11,3>>
// CHECK-NEXT:   %3 = qir.quantize %2 rounding "rnd_conv" overflow "sat" {layer = "relu1"} : tensor<2x!qir.fixed<11,3>> -> tensor<2x!qir.ufixed<6,0>>
// CHECK-NEXT:   %4 = qir.dense %3 weights(dense<{{\[\[}}1], [-1]]> : tensor<2x1xi32> : !qir.fixed<4,-2>) {layer = "fc2"} : tensor<2x!qir.ufixed<6,0>> -> tensor<1x!qir.fixed<7,-5>>
// CHECK-NEXT:   %5 = qir.cmvm %4 matrix(dense<3> : tensor<1x1xi32>) offset(dense<-1> : tensor<1xi32>) shift 0 : i32 style "mac" : tensor<1x!qir.fixed<7,-5>> -> tensor<1x!qir.fixed<10,-2>>
// CHECK-NEXT:   %6 = qir.reg %5 stage 1 : i32 : tensor<1x!qir.fixed<10,-2>>
// CHECK-NEXT:   qir.output %6 : tensor<1x!qir.fixed<10,-2>>
// CHECK-NEXT: }
