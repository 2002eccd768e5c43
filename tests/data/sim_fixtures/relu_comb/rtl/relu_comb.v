// Hand-written test fixture for qir.sim (follows the qir RTL contract).
// y = quantize<ufixed<4,2>, trn, sat>(relu(x)), x: 2x3 fixed<5,2>; combinational (latency 0).
module relu_comb (
    input  wire        clk,
    input  wire        rst,
    input  wire        in_valid,
    input  wire [29:0] in_data,
    output wire        out_valid,
    output wire [23:0] out_data
);
    assign out_valid = in_valid;
    genvar k;
    generate
        for (k = 0; k < 6; k = k + 1) begin : g
            wire [4:0] x = in_data[5*k+4:5*k];
            assign out_data[4*k+3:4*k] = x[4] ? 4'd0 : x[4:1];
        end
    endgenerate
endmodule
