// Hand-written test fixture for qir.sim (follows the qir RTL contract).
// y = quantize<fixed<8,4>, round half up (rnd), saturate (sat)>(x @ W + b), x: 4 x fixed<8,3>, 2 pipeline stages.
module mac2 (
    input  wire        clk,
    input  wire        rst,
    input  wire        in_valid,
    input  wire [31:0] in_data,
    output reg         out_valid,
    output reg  [23:0] out_data
);
    wire signed [7:0] x0 = in_data[7:0];
    wire signed [7:0] x1 = in_data[15:8];
    wire signed [7:0] x2 = in_data[23:16];
    wire signed [7:0] x3 = in_data[31:24];

    // stage 1: exact accumulators with 8 fractional bits (bias fixed<6,1> shifted left by 3)
    reg signed [13:0] acc0, acc1, acc2;
    reg v1;
    always @(posedge clk) begin
        if (rst) v1 <= 1'b0;
        else     v1 <= in_valid;
        acc0 <= x0 * 3  + x1 * (-8) + x2 * 4  + x3 * (-2) + 40;
        acc1 <= x0 * (-5) + x1 * 1  + x2 * 4  + x3 * 6    - 24;
        acc2 <= x0 * 7  + x1 * 2    + x2 * (-1) + x3 * 5  + 72;
    end

    // stage 2: drop 4 fractional bits with rounding, saturate to 8 bits
    function automatic [7:0] requant(input signed [13:0] a);
        reg signed [14:0] t;
        reg signed [10:0] r;
        begin
            t = a + 15'sd8;
            r = t >>> 4;
            if (r > 11'sd127)       requant = 8'h7f;
            else if (r < -11'sd128) requant = 8'h80;
            else                    requant = r[7:0];
        end
    endfunction

    always @(posedge clk) begin
        if (rst) out_valid <= 1'b0;
        else     out_valid <= v1;
        out_data <= {requant(acc2), requant(acc1), requant(acc0)};
    end
endmodule
