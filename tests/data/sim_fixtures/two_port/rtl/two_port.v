// Hand-written test fixture for qir.sim (follows the qir RTL contract, two inputs and outputs).
// out_data_0 = relu(a), a: 2 x fixed<6,3>; out_data_1 = quantize<ufixed<5,3>, trn, wrap>(b),
// b: 3 x ufixed<8,4>.  One pipeline stage (latency 1).
module two_port (
    input  wire        clk,
    input  wire        rst,
    input  wire        in_valid,
    input  wire [11:0] in_data_0,
    input  wire [23:0] in_data_1,
    output reg         out_valid,
    output reg  [11:0] out_data_0,
    output reg  [14:0] out_data_1
);
    function automatic [5:0] relu6(input [5:0] x);
        relu6 = x[5] ? 6'd0 : x;
    endfunction
    always @(posedge clk) begin
        if (rst) out_valid <= 1'b0;
        else     out_valid <= in_valid;
        out_data_0 <= {relu6(in_data_0[11:6]), relu6(in_data_0[5:0])};
        out_data_1 <= {in_data_1[22:18], in_data_1[14:10], in_data_1[6:2]};
    end
endmodule
