// RUN: qir-opt %s --split-input-file --verify-diagnostics | filecheck %s

// The qir.map / qir.join verifier (one rule for both: body input k takes the beats of operand k).
qir.model @map_two_inputs attributes {io = "stream"} {
  %0 = qir.input "x" : tensor<3x2x!qir.fixed<6,3>>
  %1 = qir.map %0 {layer = "m"} : tensor<3x2x!qir.fixed<6,3>> -> tensor<3x2x!qir.fixed<6,3>> {
    qir.model @b {
      %2 = qir.input "a" : tensor<2x!qir.fixed<6,3>>
      %3 = qir.input "b" : tensor<2x!qir.fixed<6,3>>
      qir.output %2 : tensor<2x!qir.fixed<6,3>>
    }
  }
  qir.output %1 : tensor<3x2x!qir.fixed<6,3>>
}
// CHECK: layer 'm': the qir.map body model needs 1 input(s) and one output

// -----

qir.model @map_beat attributes {io = "stream"} {
  %0 = qir.input "x" : tensor<3x2x!qir.fixed<6,3>>
  %1 = qir.map %0 {layer = "m"} : tensor<3x2x!qir.fixed<6,3>> -> tensor<3x3x!qir.fixed<6,3>> {
    qir.model @b {
      %2 = qir.input "a" : tensor<3x!qir.fixed<6,3>>
      qir.output %2 : tensor<3x!qir.fixed<6,3>>
    }
  }
  qir.output %1 : tensor<3x3x!qir.fixed<6,3>>
}
// CHECK: layer 'm': body input 0 (3,) does not take the beats of (3, 2) (result (3, 3))

// -----

qir.model @map_elem attributes {io = "stream"} {
  %0 = qir.input "x" : tensor<3x2x!qir.fixed<6,3>>
  %1 = qir.map %0 {layer = "m"} : tensor<3x2x!qir.fixed<6,3>> -> tensor<3x2x!qir.fixed<6,3>> {
    qir.model @b {
      %2 = qir.input "a" : tensor<2x!qir.fixed<7,3>>
      qir.output %2 : tensor<2x!qir.fixed<7,3>>
    }
  }
  qir.output %1 : tensor<3x2x!qir.fixed<6,3>>
}
// CHECK: layer 'm': body input 0 element type differs from the qir.map operand

// -----

qir.model @join_lead attributes {io = "stream"} {
  %0 = qir.input "x" : tensor<3x2x!qir.fixed<6,3>>
  %1 = qir.input "y" : tensor<4x2x!qir.fixed<6,3>>
  %2 = qir.join %0, %1 {layer = "j"} : tensor<3x2x!qir.fixed<6,3>>, tensor<4x2x!qir.fixed<6,3>> -> tensor<3x2x!qir.fixed<6,3>> {
    qir.model @b {
      %3 = qir.input "lhs" : tensor<2x!qir.fixed<6,3>>
      %4 = qir.input "rhs" : tensor<2x!qir.fixed<6,3>>
      qir.output %3 : tensor<2x!qir.fixed<6,3>>
    }
  }
  qir.output %2 : tensor<3x2x!qir.fixed<6,3>>
}
// CHECK: layer 'j': body input 1 (2,) does not take the beats of (4, 2) (result (3, 2))

// -----

qir.model @join_out attributes {io = "stream"} {
  %0 = qir.input "x" : tensor<3x2x!qir.fixed<6,3>>
  %1 = qir.input "y" : tensor<3x2x!qir.fixed<6,3>>
  %2 = qir.join %0, %1 {layer = "j"} : tensor<3x2x!qir.fixed<6,3>>, tensor<3x2x!qir.fixed<6,3>> -> tensor<3x4x!qir.fixed<6,3>> {
    qir.model @b {
      %3 = qir.input "lhs" : tensor<2x!qir.fixed<6,3>>
      %4 = qir.input "rhs" : tensor<2x!qir.fixed<6,3>>
      qir.output %3 : tensor<2x!qir.fixed<6,3>>
    }
  }
  qir.output %2 : tensor<3x4x!qir.fixed<6,3>>
}
// CHECK: layer 'j': body result (2,) does not give the beats of (3, 4)

// -----

qir.model @transpose_perm {
  %0 = qir.input "x" : tensor<3x2x!qir.fixed<6,3>>
  %1 = qir.transpose %0 perm [0, 0] {layer = "t"} : tensor<3x2x!qir.fixed<6,3>> -> tensor<2x3x!qir.fixed<6,3>>
  qir.output %1 : tensor<2x3x!qir.fixed<6,3>>
}
// CHECK: layer 't': perm [0, 0] is not a permutation of 0..1

// -----

qir.model @pad_elem {
  %0 = qir.input "x" : tensor<3x2x!qir.fixed<6,3>>
  %1 = qir.pad %0 pads [1, 0, 1, 0] {layer = "p"} : tensor<3x2x!qir.fixed<6,3>> -> tensor<5x2x!qir.fixed<7,3>>
  qir.output %1 : tensor<5x2x!qir.fixed<7,3>>
}
// CHECK: layer 'p': result element type fixed<7,3> must equal the input's fixed<6,3>

// -----

// qir.stream_mvu: reuse (input chunks per beat) at most C, groups at most n_out, the matrix
// (beats x C, n_out), an exact result type.
qir.model @smvu_reuse {
  %0 = qir.input "x" : tensor<3x2x!qir.fixed<8,3>>
  %1 = qir.stream_mvu %0 matrix(dense<[[1], [2], [3], [4], [5], [6]]> : tensor<6x1xi32>) offset(dense<[0]> : tensor<1xi32>) shift 0 : i32 style "mac" reuse 3 : i64 groups 1 : i64 impl "rom" {layer = "s"} : tensor<3x2x!qir.fixed<8,3>> -> tensor<1x!qir.fixed<13,8>>
  qir.output %1 : tensor<1x!qir.fixed<13,8>>
}
// CHECK: layer 's': reuse (input chunks per beat) must be in 1..2, got 3

// -----

qir.model @smvu_groups {
  %0 = qir.input "x" : tensor<3x2x!qir.fixed<8,3>>
  %1 = qir.stream_mvu %0 matrix(dense<[[1], [2], [3], [4], [5], [6]]> : tensor<6x1xi32>) offset(dense<[0]> : tensor<1xi32>) shift 0 : i32 style "mac" reuse 1 : i64 groups 2 : i64 impl "rom" {layer = "s"} : tensor<3x2x!qir.fixed<8,3>> -> tensor<1x!qir.fixed<13,8>>
  qir.output %1 : tensor<1x!qir.fixed<13,8>>
}
// CHECK: layer 's': groups (output groups) must be in 1..1, got 2

// -----

qir.model @smvu_matrix {
  %0 = qir.input "x" : tensor<3x2x!qir.fixed<8,3>>
  %1 = qir.stream_mvu %0 matrix(dense<[[1], [2]]> : tensor<2x1xi32>) offset(dense<[0]> : tensor<1xi32>) shift 0 : i32 style "mac" reuse 1 : i64 groups 1 : i64 impl "rom" {layer = "s"} : tensor<3x2x!qir.fixed<8,3>> -> tensor<1x!qir.fixed<13,8>>
  qir.output %1 : tensor<1x!qir.fixed<13,8>>
}
// CHECK: layer 's': matrix (2, 1) / offset (1,) do not match (6, 1) / (1,)

// -----

qir.model @smvu_narrow {
  %0 = qir.input "x" : tensor<3x2x!qir.fixed<8,3>>
  %1 = qir.stream_mvu %0 matrix(dense<[[1], [2], [3], [4], [5], [6]]> : tensor<6x1xi32>) offset(dense<[0]> : tensor<1xi32>) shift 0 : i32 style "mac" reuse 1 : i64 groups 1 : i64 impl "rom" {layer = "s"} : tensor<3x2x!qir.fixed<8,3>> -> tensor<1x!qir.fixed<10,5>>
  qir.output %1 : tensor<1x!qir.fixed<10,5>>
}
// CHECK: layer 's': result type fixed<10,5> cannot hold the exact results [-84.0, 83.34375]
