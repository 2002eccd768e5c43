// Hand-written test fixture for qir.sim (follows the qir RTL contract): a one-element port.
// y = relu(x), x: 1 x fixed<8,3>, one pipeline stage (latency 1).
module relu1 (
    input  wire       clk,
    input  wire       rst,
    input  wire       in_valid,
    input  wire [7:0] in_data,
    output reg        out_valid,
    output reg  [7:0] out_data
);
    always @(posedge clk) begin
        out_valid <= rst ? 1'b0 : in_valid;
        out_data <= in_data[7] ? 8'd0 : in_data;
    end
endmodule
