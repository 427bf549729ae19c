// Behavioural model of the Lattice ECP5 DP16KD block RAM, for simulation only: the
// subset rtl_templates/memories.py instantiates, written for hwgen from the ECP5
// memory usage guide (Lattice FPGA-TN-02204, "ECP5 and ECP5-5G Memory Usage
// Guide"), because yosys ships only a black box for this cell. The address
// layout is the one yosys's own DP16KD mapping uses (share/lattice/brams_map_16kd.v):
// a word of DATA_WIDTH bits 1, 2, 4, 9 or 18 is addressed by AD[13:k], k = 0, 1,
// 2, 3, 4, and in the 18-bit mode AD0 and AD1 enable the write of bits 8:0 and
// 17:9.
//
// What it models: 16 Kbit of storage; per port, on the rising clock edge while
// CE is high, a write (WE high) or a read into the port's latch (WRITEMODE
// "NORMAL": a write leaves the output alone); REGMODE "OUTREG" adds the output
// register, loaded from the latch while OCE is high and cleared by RST
// (RESETMODE "SYNC"); REGMODE "NOREG" drives the latch straight out.
// What it refuses (a $fatal at time 0): different widths on the two ports, a
// width other than 1, 2, 4, 9, 18, another write mode, asynchronous reset.
// What it leaves out: chip-select decoding (CS must match CSDECODE 0b000: tie
// them low), GSR, and read-during-write collisions between the ports, which the
// hardware leaves undefined (this model returns the old word; hwgen never uses
// such a read).
`default_nettype none
/* verilator lint_off UNUSEDSIGNAL */
/* verilator lint_off UNUSEDPARAM */
/* verilator lint_off WIDTHTRUNC */
/* verilator lint_off WIDTHEXPAND */
module DP16KD #(
    parameter DATA_WIDTH_A = 18, parameter DATA_WIDTH_B = 18,
    parameter REGMODE_A = "NOREG", parameter REGMODE_B = "NOREG",
    parameter RESETMODE = "SYNC", parameter ASYNC_RESET_RELEASE = "SYNC",
    parameter CSDECODE_A = "0b000", parameter CSDECODE_B = "0b000",
    parameter WRITEMODE_A = "NORMAL", parameter WRITEMODE_B = "NORMAL",
    parameter GSR = "DISABLED"
) (
    input  wire DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
    input  wire ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
    input  wire CEA, OCEA, CLKA, WEA, RSTA, CSA2, CSA1, CSA0,
    output wire DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,
    input  wire DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
    input  wire ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
    input  wire CEB, OCEB, CLKB, WEB, RSTB, CSB2, CSB1, CSB0,
    output wire DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
    localparam integer LOW = DATA_WIDTH_A == 18 ? 4 : DATA_WIDTH_A == 9 ? 3 : DATA_WIDTH_A == 4 ? 2 :
                             DATA_WIDTH_A == 2 ? 1 : 0;
    localparam [17:0] MASK = DATA_WIDTH_A == 18 ? 18'h3ffff : (18'd1 << DATA_WIDTH_A) - 18'd1;
    initial begin
        if (DATA_WIDTH_A != DATA_WIDTH_B) $fatal(1, "DP16KD model: DATA_WIDTH_A != DATA_WIDTH_B");
        if (!(DATA_WIDTH_A == 1 || DATA_WIDTH_A == 2 || DATA_WIDTH_A == 4 || DATA_WIDTH_A == 9 || DATA_WIDTH_A == 18))
            $fatal(1, "DP16KD model: unsupported DATA_WIDTH %0d", DATA_WIDTH_A);
        if (WRITEMODE_A != "NORMAL" || WRITEMODE_B != "NORMAL") $fatal(1, "DP16KD model: WRITEMODE must be NORMAL");
        if (RESETMODE != "SYNC") $fatal(1, "DP16KD model: RESETMODE must be SYNC");
    end
    reg [17:0] mem [0:(16384 >> LOW) - 1];

    wire [17:0] di_a = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
    wire [13:0] ad_a = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
    wire [13:0] word_a = ad_a >> LOW;
    reg  [17:0] latch_a, out_a;
    always @(posedge CLKA) begin
        if (CEA) begin
            if (WEA) begin
                if (DATA_WIDTH_A != 18 || ADA0) mem[word_a][8:0] <= di_a[8:0] & MASK[8:0];
                if (DATA_WIDTH_A == 18 && ADA1) mem[word_a][17:9] <= di_a[17:9];
            end else
                latch_a <= mem[word_a] & MASK;
        end
        if (RSTA) out_a <= 18'd0;
        else if (OCEA) out_a <= latch_a;
    end
    wire [17:0] do_a = REGMODE_A == "OUTREG" ? out_a : latch_a;
    assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = do_a;

    wire [17:0] di_b = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
    wire [13:0] ad_b = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
    wire [13:0] word_b = ad_b >> LOW;
    reg  [17:0] latch_b, out_b;
    always @(posedge CLKB) begin
        if (CEB) begin
            if (WEB) begin
                if (DATA_WIDTH_B != 18 || ADB0) mem[word_b][8:0] <= di_b[8:0] & MASK[8:0];
                if (DATA_WIDTH_B == 18 && ADB1) mem[word_b][17:9] <= di_b[17:9];
            end else
                latch_b <= mem[word_b] & MASK;
        end
        if (RSTB) out_b <= 18'd0;
        else if (OCEB) out_b <= latch_b;
    end
    wire [17:0] do_b = REGMODE_B == "OUTREG" ? out_b : latch_b;
    assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = do_b;
endmodule
