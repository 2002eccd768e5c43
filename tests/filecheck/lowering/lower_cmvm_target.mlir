// RUN: qir-opt %s -p qir-infer-widths,qir-lower-cmvm | filecheck %s --check-prefix=XILINX
// RUN: qir-opt %s -p "qir-infer-widths,qir-lower-cmvm{target=xilinx}" | filecheck %s --check-prefix=XILINX
// RUN: qir-opt %s -p "qir-infer-widths,qir-lower-cmvm{target=ecp5}" | filecheck %s --check-prefix=ECP5
// RUN: qir-opt %s -p "qir-infer-widths,qir-lower-cmvm{target=asic}" | filecheck %s --check-prefix=ASIC
// RUN: not qir-opt %s -p "qir-lower-cmvm{target=zynq}" 2>&1 | filecheck %s --check-prefix=BAD

// The cost model the search minimizes (AdderGraph.target_cost): xilinx (the default) LUT bits,
// 87 here (the ecp5 graph has 87 too, the asic one 86); ecp5 carry-chain bits, 110 against the
// xilinx graph's 114; asic NAND2 area, 2314 against 2358 (units of 1/3 NAND2).  Same matrix,
// three different graphs of 11 adders.
qir.model @small {
  %0 = qir.input "x" : tensor<3x!qir.fixed<8,3>>
  %1 = qir.cmvm %0 matrix(dense<[[11, 4, 0], [-7, -6, -14], [-13, -15, -10]]> : tensor<3x3xi32>) offset(dense<[0, 0, 0]> : tensor<3xi32>) shift 0 : i32 style "cmvm" {layer = "fc1"} : tensor<3x!qir.fixed<8,3>> -> tensor<3x!qir.fixed<16,11>>
  qir.output %1 : tensor<3x!qir.fixed<16,11>>
}
// XILINX: qir.addergraph %0 nodes(dense<{{\[\[}}0, 2, 2, 0, 1], [1, 0, 1, 3, -1], [0, 0, 2, 4, 1], [3, 0, 3, 2, -1], [4, 0, 5, 0, -1], [7, 0, 6, 0, -1], [1, 0, 2, 3, -1], [9, 0, 1, 2, -1], [3, 0, 10, 1, 1], [2, 0, 2, 2, 1], [4, 0, 12, 0, -1]]> : tensor<11x5xi32>)
// XILINX-SAME: outputs(dense<{{\[\[}}8, 0, 1], [11, 0, 1], [13, 1, 1]]> : tensor<3x3xi32>)
// ECP5: qir.addergraph %0 nodes(dense<{{\[\[}}0, 2, 2, 0, 1], [1, 0, 2, 1, 1], [1, 0, 0, 0, -1], [3, 0, 4, 3, 1], [3, 2, 5, 0, 1], [7, 0, 6, 0, -1], [1, 1, 3, 0, 1], [9, 0, 4, 3, -1], [1, 0, 1, 3, -1], [2, 0, 2, 2, 1], [11, 0, 12, 0, -1]]> : tensor<11x5xi32>)
// ECP5-SAME: outputs(dense<{{\[\[}}8, 0, 1], [10, 0, 1], [13, 1, 1]]> : tensor<3x3xi32>)
// ASIC: qir.addergraph %0 nodes(dense<{{\[\[}}0, 2, 2, 0, 1], [1, 0, 2, 1, 1], [1, 0, 0, 0, -1], [5, 0, 4, 3, -1], [3, 0, 3, 2, -1], [6, 0, 7, 0, -1], [1, 0, 4, 2, -1], [3, 0, 9, 1, 1], [1, 0, 1, 3, -1], [2, 0, 2, 2, 1], [11, 0, 12, 0, -1]]> : tensor<11x5xi32>)
// ASIC-SAME: outputs(dense<{{\[\[}}8, 0, 1], [10, 0, 1], [13, 1, 1]]> : tensor<3x3xi32>)
// BAD: qir-opt: error: qir-lower-cmvm: unknown target 'zynq'; use one of xilinx, ecp5, asic
