// Hand-written test fixture (qir.rtl.axi_stream's valid/ready core interface): y = relu(x),
// x: 1 x fixed<8,3>, a two-register pipeline with backpressure (each register loads when it is
// empty or the next one takes its content), so in_ready depends on out_ready combinationally.
module relu1_stream (
    input  wire       clk,
    input  wire       rst,
    input  wire       in_valid,
    output wire       in_ready,
    input  wire [7:0] in_data,
    output wire       out_valid,
    input  wire       out_ready,
    output wire [7:0] out_data
);
    reg v1 = 1'b0, v2 = 1'b0;
    reg [7:0] d1 = 8'd0, d2 = 8'd0;
    wire adv2 = !v2 || out_ready;
    wire adv1 = !v1 || adv2;
    assign in_ready = adv1;
    assign out_valid = v2;
    assign out_data = d2;
    always @(posedge clk) begin
        if (rst) begin
            v1 <= 1'b0;
            v2 <= 1'b0;
        end else begin
            if (adv2) begin
                v2 <= v1;
                d2 <= d1;
            end
            if (adv1) begin
                v1 <= in_valid;
                d1 <= in_data[7] ? 8'd0 : in_data;
            end
        end
    end
endmodule
