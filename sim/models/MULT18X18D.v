// Behavioural model of the Lattice ECP5 MULT18X18D, for simulation only: the
// subset rtl_templates/multiplier.py instantiates, written for hwgen from the
// ECP5 sysDSP usage guide (Lattice FPGA-TN-02205, "ECP5 and ECP5-5G sysDSP
// Usage Guide"), because yosys ships only a black box for this cell.
//
// What it models:
//   P = A * B, 36 bits; SIGNEDA / SIGNEDB make A / B two's complement, else
//   unsigned; each of the A input, B input, pipeline and output registers is
//   present when its REG_*_CLK parameter is "CLK0" and bypassed when "NONE";
//   present registers load on the rising edge of CLK0 while CE0 is high and
//   clear synchronously on RST0 (RESETMODE "SYNC"), reset taking priority.
// What it refuses (a $fatal at time 0): another clock, enable or reset
// select, the C input register, MULT_BYPASS, asynchronous reset.
// What it leaves out: the shift/cascade paths (SOURCEA/SOURCEB must be 0, the
// SRI* inputs are ignored, the SRO*/RO* outputs are driven 0), GSR.
`default_nettype none
/* verilator lint_off UNUSEDSIGNAL */
module MULT18X18D (
    input  wire A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0,
    input  wire B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0,
    input  wire C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0,
    input  wire SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
    input  wire CLK3, CLK2, CLK1, CLK0, CE3, CE2, CE1, CE0, RST3, RST2, RST1, RST0,
    input  wire SRIA17, SRIA16, SRIA15, SRIA14, SRIA13, SRIA12, SRIA11, SRIA10, SRIA9,
    input  wire SRIA8, SRIA7, SRIA6, SRIA5, SRIA4, SRIA3, SRIA2, SRIA1, SRIA0,
    input  wire SRIB17, SRIB16, SRIB15, SRIB14, SRIB13, SRIB12, SRIB11, SRIB10, SRIB9,
    input  wire SRIB8, SRIB7, SRIB6, SRIB5, SRIB4, SRIB3, SRIB2, SRIB1, SRIB0,
    output wire SROA17, SROA16, SROA15, SROA14, SROA13, SROA12, SROA11, SROA10, SROA9,
    output wire SROA8, SROA7, SROA6, SROA5, SROA4, SROA3, SROA2, SROA1, SROA0,
    output wire SROB17, SROB16, SROB15, SROB14, SROB13, SROB12, SROB11, SROB10, SROB9,
    output wire SROB8, SROB7, SROB6, SROB5, SROB4, SROB3, SROB2, SROB1, SROB0,
    output wire ROA17, ROA16, ROA15, ROA14, ROA13, ROA12, ROA11, ROA10, ROA9,
    output wire ROA8, ROA7, ROA6, ROA5, ROA4, ROA3, ROA2, ROA1, ROA0,
    output wire ROB17, ROB16, ROB15, ROB14, ROB13, ROB12, ROB11, ROB10, ROB9,
    output wire ROB8, ROB7, ROB6, ROB5, ROB4, ROB3, ROB2, ROB1, ROB0,
    output wire ROC17, ROC16, ROC15, ROC14, ROC13, ROC12, ROC11, ROC10, ROC9,
    output wire ROC8, ROC7, ROC6, ROC5, ROC4, ROC3, ROC2, ROC1, ROC0,
    output wire P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18,
    output wire P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0,
    output wire SIGNEDP
);
    parameter REG_INPUTA_CLK = "NONE";
    parameter REG_INPUTA_CE = "CE0";
    parameter REG_INPUTA_RST = "RST0";
    parameter REG_INPUTB_CLK = "NONE";
    parameter REG_INPUTB_CE = "CE0";
    parameter REG_INPUTB_RST = "RST0";
    parameter REG_INPUTC_CLK = "NONE";
    parameter REG_INPUTC_CE = "CE0";
    parameter REG_INPUTC_RST = "RST0";
    parameter REG_PIPELINE_CLK = "NONE";
    parameter REG_PIPELINE_CE = "CE0";
    parameter REG_PIPELINE_RST = "RST0";
    parameter REG_OUTPUT_CLK = "NONE";
    parameter REG_OUTPUT_CE = "CE0";
    parameter REG_OUTPUT_RST = "RST0";
    parameter CLK0_DIV = "ENABLED";
    parameter CLK1_DIV = "ENABLED";
    parameter CLK2_DIV = "ENABLED";
    parameter CLK3_DIV = "ENABLED";
    parameter HIGHSPEED_CLK = "NONE";
    parameter GSR = "ENABLED";
    parameter CAS_MATCH_REG = "FALSE";
    parameter SOURCEB_MODE = "B_SHIFT";
    parameter MULT_BYPASS = "DISABLED";
    parameter RESETMODE = "SYNC";

    localparam A_REG = REG_INPUTA_CLK == "CLK0";
    localparam B_REG = REG_INPUTB_CLK == "CLK0";
    localparam PIPE_REG = REG_PIPELINE_CLK == "CLK0";
    localparam OUT_REG = REG_OUTPUT_CLK == "CLK0";

    initial begin
        if ((REG_INPUTA_CLK != "NONE" && !A_REG) || (REG_INPUTB_CLK != "NONE" && !B_REG)
                || (REG_PIPELINE_CLK != "NONE" && !PIPE_REG) || (REG_OUTPUT_CLK != "NONE" && !OUT_REG)
                || REG_INPUTC_CLK != "NONE")
            $fatal(1, "MULT18X18D model: only CLK0 or NONE registers, and no C register");
        if (REG_INPUTA_CE != "CE0" || REG_INPUTB_CE != "CE0" || REG_PIPELINE_CE != "CE0" || REG_OUTPUT_CE != "CE0"
                || REG_INPUTA_RST != "RST0" || REG_INPUTB_RST != "RST0" || REG_PIPELINE_RST != "RST0"
                || REG_OUTPUT_RST != "RST0")
            $fatal(1, "MULT18X18D model: only CE0 and RST0");
        if (MULT_BYPASS != "DISABLED" || RESETMODE != "SYNC")
            $fatal(1, "MULT18X18D model: MULT_BYPASS must be DISABLED and RESETMODE SYNC");
    end

    wire [17:0] a = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};

    // The sign controls travel with their operand through its input register.
    reg [18:0] a_q = 19'd0, b_q = 19'd0;
    always @(posedge CLK0)
        if (RST0) begin a_q <= 19'd0; b_q <= 19'd0; end
        else if (CE0) begin a_q <= {SIGNEDA, a}; b_q <= {SIGNEDB, b}; end
    wire [18:0] a_in = A_REG ? a_q : {SIGNEDA, a};
    wire [18:0] b_in = B_REG ? b_q : {SIGNEDB, b};

    // Each operand extended by its own sign control to 36 bits; the low 36 bits of the product are exact.
    wire [35:0] a_ext = {{18{a_in[18] & a_in[17]}}, a_in[17:0]};
    wire [35:0] b_ext = {{18{b_in[18] & b_in[17]}}, b_in[17:0]};
    wire [35:0] product = a_ext * b_ext;

    reg [35:0] pipe_q = 36'd0, out_q = 36'd0;
    wire [35:0] pipe = PIPE_REG ? pipe_q : product;
    always @(posedge CLK0)
        if (RST0) begin pipe_q <= 36'd0; out_q <= 36'd0; end
        else if (CE0) begin pipe_q <= product; out_q <= pipe; end
    wire [35:0] p = OUT_REG ? out_q : pipe;

    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18,
            P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = p;
    assign SIGNEDP = a_in[18] | b_in[18];
    assign {SROA17, SROA16, SROA15, SROA14, SROA13, SROA12, SROA11, SROA10, SROA9,
            SROA8, SROA7, SROA6, SROA5, SROA4, SROA3, SROA2, SROA1, SROA0} = 18'd0;
    assign {SROB17, SROB16, SROB15, SROB14, SROB13, SROB12, SROB11, SROB10, SROB9,
            SROB8, SROB7, SROB6, SROB5, SROB4, SROB3, SROB2, SROB1, SROB0} = 18'd0;
    assign {ROA17, ROA16, ROA15, ROA14, ROA13, ROA12, ROA11, ROA10, ROA9,
            ROA8, ROA7, ROA6, ROA5, ROA4, ROA3, ROA2, ROA1, ROA0} = 18'd0;
    assign {ROB17, ROB16, ROB15, ROB14, ROB13, ROB12, ROB11, ROB10, ROB9,
            ROB8, ROB7, ROB6, ROB5, ROB4, ROB3, ROB2, ROB1, ROB0} = 18'd0;
    assign {ROC17, ROC16, ROC15, ROC14, ROC13, ROC12, ROC11, ROC10, ROC9,
            ROC8, ROC7, ROC6, ROC5, ROC4, ROC3, ROC2, ROC1, ROC0} = 18'd0;
endmodule
/* verilator lint_on UNUSEDSIGNAL */
`default_nettype wire
