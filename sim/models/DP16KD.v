// Behavioural model of the Lattice ECP5 DP16KD block RAM, for simulation only: the
// subset rtl_templates/memories.py instantiates, written for hwgen from the ECP5
// memory usage guide (Lattice FPGA-TN-02204, "ECP5 and ECP5-5G Memory Usage
// Guide"), because yosys ships only a black box for this cell. The address
// layout is the one yosys's own DP16KD mapping uses (share/lattice/brams_map_16kd.v):
// a word of DATA_WIDTH bits 1, 2, 4, 9, 18 or 36 is addressed by AD[13:k], k = 0,
// 1, 2, 3, 4, 5, and in the 18-bit mode AD0 and AD1 enable the write of bits 8:0
// and 17:9. The 36-bit mode is modelled as a ROM read on port B: DOA carries the
// word's low 18 bits and DOB its high 18 bits (yosys's PDPW16KD mapping), both
// through port B's latch and output register (hwgen holds port A's CE low, as
// yosys's mapping of a ROM does, drives OCEA with OCEB and sets REGMODE_A to
// REGMODE_B, so either port's output register would do).
//
// What it models: 16 Kbit of storage, initialised from INITVAL_00..3F in the 9-, 18-
// and 36-bit modes (the layout yosys's mapping writes); per port, on the rising clock edge while
// CE is high, a write (WE high) or a read into the port's latch (WRITEMODE
// "NORMAL": a write leaves the output alone); REGMODE "OUTREG" adds the output
// register, loaded from the latch while OCE is high and cleared by RST
// (RESETMODE "SYNC"); REGMODE "NOREG" drives the latch straight out.
// What it refuses (a $fatal): different widths on the two ports, a width other
// than 1, 2, 4, 9, 18, 36, another write mode, asynchronous reset, a write on port B
// (hwgen writes on port A and reads on port B, as yosys's mapping does), a write
// or different REGMODEs in the 36-bit mode.
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
    parameter GSR = "DISABLED",
    parameter [319:0] INITVAL_00 = 320'h0,
    parameter [319:0] INITVAL_01 = 320'h0,
    parameter [319:0] INITVAL_02 = 320'h0,
    parameter [319:0] INITVAL_03 = 320'h0,
    parameter [319:0] INITVAL_04 = 320'h0,
    parameter [319:0] INITVAL_05 = 320'h0,
    parameter [319:0] INITVAL_06 = 320'h0,
    parameter [319:0] INITVAL_07 = 320'h0,
    parameter [319:0] INITVAL_08 = 320'h0,
    parameter [319:0] INITVAL_09 = 320'h0,
    parameter [319:0] INITVAL_0A = 320'h0,
    parameter [319:0] INITVAL_0B = 320'h0,
    parameter [319:0] INITVAL_0C = 320'h0,
    parameter [319:0] INITVAL_0D = 320'h0,
    parameter [319:0] INITVAL_0E = 320'h0,
    parameter [319:0] INITVAL_0F = 320'h0,
    parameter [319:0] INITVAL_10 = 320'h0,
    parameter [319:0] INITVAL_11 = 320'h0,
    parameter [319:0] INITVAL_12 = 320'h0,
    parameter [319:0] INITVAL_13 = 320'h0,
    parameter [319:0] INITVAL_14 = 320'h0,
    parameter [319:0] INITVAL_15 = 320'h0,
    parameter [319:0] INITVAL_16 = 320'h0,
    parameter [319:0] INITVAL_17 = 320'h0,
    parameter [319:0] INITVAL_18 = 320'h0,
    parameter [319:0] INITVAL_19 = 320'h0,
    parameter [319:0] INITVAL_1A = 320'h0,
    parameter [319:0] INITVAL_1B = 320'h0,
    parameter [319:0] INITVAL_1C = 320'h0,
    parameter [319:0] INITVAL_1D = 320'h0,
    parameter [319:0] INITVAL_1E = 320'h0,
    parameter [319:0] INITVAL_1F = 320'h0,
    parameter [319:0] INITVAL_20 = 320'h0,
    parameter [319:0] INITVAL_21 = 320'h0,
    parameter [319:0] INITVAL_22 = 320'h0,
    parameter [319:0] INITVAL_23 = 320'h0,
    parameter [319:0] INITVAL_24 = 320'h0,
    parameter [319:0] INITVAL_25 = 320'h0,
    parameter [319:0] INITVAL_26 = 320'h0,
    parameter [319:0] INITVAL_27 = 320'h0,
    parameter [319:0] INITVAL_28 = 320'h0,
    parameter [319:0] INITVAL_29 = 320'h0,
    parameter [319:0] INITVAL_2A = 320'h0,
    parameter [319:0] INITVAL_2B = 320'h0,
    parameter [319:0] INITVAL_2C = 320'h0,
    parameter [319:0] INITVAL_2D = 320'h0,
    parameter [319:0] INITVAL_2E = 320'h0,
    parameter [319:0] INITVAL_2F = 320'h0,
    parameter [319:0] INITVAL_30 = 320'h0,
    parameter [319:0] INITVAL_31 = 320'h0,
    parameter [319:0] INITVAL_32 = 320'h0,
    parameter [319:0] INITVAL_33 = 320'h0,
    parameter [319:0] INITVAL_34 = 320'h0,
    parameter [319:0] INITVAL_35 = 320'h0,
    parameter [319:0] INITVAL_36 = 320'h0,
    parameter [319:0] INITVAL_37 = 320'h0,
    parameter [319:0] INITVAL_38 = 320'h0,
    parameter [319:0] INITVAL_39 = 320'h0,
    parameter [319:0] INITVAL_3A = 320'h0,
    parameter [319:0] INITVAL_3B = 320'h0,
    parameter [319:0] INITVAL_3C = 320'h0,
    parameter [319:0] INITVAL_3D = 320'h0,
    parameter [319:0] INITVAL_3E = 320'h0,
    parameter [319:0] INITVAL_3F = 320'h0
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
    localparam integer LOW = DATA_WIDTH_A == 36 ? 5 : DATA_WIDTH_A == 18 ? 4 : DATA_WIDTH_A == 9 ? 3 :
                             DATA_WIDTH_A == 4 ? 2 : DATA_WIDTH_A == 2 ? 1 : 0;
    localparam WIDE = DATA_WIDTH_A == 36;
    localparam [35:0] MASK = WIDE ? 36'hfffffffff : DATA_WIDTH_A == 18 ? 36'h3ffff : (36'd1 << DATA_WIDTH_A) - 36'd1;
    initial begin
        if (DATA_WIDTH_A != DATA_WIDTH_B) $fatal(1, "DP16KD model: DATA_WIDTH_A != DATA_WIDTH_B");
        if (!(DATA_WIDTH_A == 1 || DATA_WIDTH_A == 2 || DATA_WIDTH_A == 4 || DATA_WIDTH_A == 9 || DATA_WIDTH_A == 18
              || WIDE))
            $fatal(1, "DP16KD model: unsupported DATA_WIDTH %0d", DATA_WIDTH_A);
        if (WIDE && REGMODE_A != REGMODE_B) $fatal(1, "DP16KD model: the 36-bit mode needs REGMODE_A == REGMODE_B");
        if (WRITEMODE_A != "NORMAL" || WRITEMODE_B != "NORMAL") $fatal(1, "DP16KD model: WRITEMODE must be NORMAL");
        if (RESETMODE != "SYNC") $fatal(1, "DP16KD model: RESETMODE must be SYNC");
    end
    reg [35:0] mem [0:(16384 >> LOW) - 1];
    // INITVAL_xx: slots 16xx..16xx+15 of 20 bits, each slot's low 18 bits one 18-bit word, two 9-bit words
    // (the even one low) or half a 36-bit word (the low half in the even slot); all-zero contents in the other
    // modes
    task automatic load(input integer idx, input [319:0] value);
        integer i;
        for (i = 0; i < 16; i = i + 1) begin
            if (LOW == 5) begin
                if (i % 2 == 0) mem[(idx * 16 + i) / 2][17:0] = value[i * 20 +: 18];
                else mem[(idx * 16 + i) / 2][35:18] = value[i * 20 +: 18];
            end else if (LOW == 4) mem[idx * 16 + i] = {18'd0, value[i * 20 +: 18]};
            else if (LOW == 3) begin
                mem[(idx * 16 + i) * 2] = {27'd0, value[i * 20 +: 9]};
                mem[(idx * 16 + i) * 2 + 1] = {27'd0, value[i * 20 + 9 +: 9]};
            end else if (value != 320'd0) $fatal(1, "DP16KD model: INITVAL only in the 9- and 18-bit modes");
        end
    endtask
    integer w;
    initial begin
        for (w = 0; w < (16384 >> LOW); w = w + 1) mem[w] = 36'd0;
        load(0, INITVAL_00);
        load(1, INITVAL_01);
        load(2, INITVAL_02);
        load(3, INITVAL_03);
        load(4, INITVAL_04);
        load(5, INITVAL_05);
        load(6, INITVAL_06);
        load(7, INITVAL_07);
        load(8, INITVAL_08);
        load(9, INITVAL_09);
        load(10, INITVAL_0A);
        load(11, INITVAL_0B);
        load(12, INITVAL_0C);
        load(13, INITVAL_0D);
        load(14, INITVAL_0E);
        load(15, INITVAL_0F);
        load(16, INITVAL_10);
        load(17, INITVAL_11);
        load(18, INITVAL_12);
        load(19, INITVAL_13);
        load(20, INITVAL_14);
        load(21, INITVAL_15);
        load(22, INITVAL_16);
        load(23, INITVAL_17);
        load(24, INITVAL_18);
        load(25, INITVAL_19);
        load(26, INITVAL_1A);
        load(27, INITVAL_1B);
        load(28, INITVAL_1C);
        load(29, INITVAL_1D);
        load(30, INITVAL_1E);
        load(31, INITVAL_1F);
        load(32, INITVAL_20);
        load(33, INITVAL_21);
        load(34, INITVAL_22);
        load(35, INITVAL_23);
        load(36, INITVAL_24);
        load(37, INITVAL_25);
        load(38, INITVAL_26);
        load(39, INITVAL_27);
        load(40, INITVAL_28);
        load(41, INITVAL_29);
        load(42, INITVAL_2A);
        load(43, INITVAL_2B);
        load(44, INITVAL_2C);
        load(45, INITVAL_2D);
        load(46, INITVAL_2E);
        load(47, INITVAL_2F);
        load(48, INITVAL_30);
        load(49, INITVAL_31);
        load(50, INITVAL_32);
        load(51, INITVAL_33);
        load(52, INITVAL_34);
        load(53, INITVAL_35);
        load(54, INITVAL_36);
        load(55, INITVAL_37);
        load(56, INITVAL_38);
        load(57, INITVAL_39);
        load(58, INITVAL_3A);
        load(59, INITVAL_3B);
        load(60, INITVAL_3C);
        load(61, INITVAL_3D);
        load(62, INITVAL_3E);
        load(63, INITVAL_3F);
    end

    wire [17:0] di_a = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
    wire [13:0] ad_a = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
    wire [13:0] word_a = ad_a >> LOW;
    reg  [17:0] latch_a, out_a;
    always @(posedge CLKA) begin
        if (WIDE) begin
            if (CEA && WEA) $fatal(1, "DP16KD model: the 36-bit mode is read-only in this subset");
        end else if (CEA) begin
            if (WEA) begin
                if (DATA_WIDTH_A != 18 || ADA0) mem[word_a][8:0] <= di_a[8:0] & MASK[8:0];
                if (DATA_WIDTH_A == 18 && ADA1) mem[word_a][17:9] <= di_a[17:9];
            end else
                latch_a <= mem[word_a][17:0] & MASK[17:0];
        end
        if (RSTA) out_a <= 18'd0;
        else if (OCEA) out_a <= latch_a;
    end
    wire [17:0] do_a;
    assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = do_a;

    wire [17:0] di_b = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
    wire [13:0] ad_b = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
    wire [13:0] word_b = ad_b >> LOW;
    reg  [35:0] latch_b, out_b;
    always @(posedge CLKB) begin
        if (CEB) begin
            if (WEB) $fatal(1, "DP16KD model: port B is read-only in this subset");
            else latch_b <= mem[word_b] & MASK;
        end
        if (RSTB) out_b <= 36'd0;
        else if (OCEB) out_b <= latch_b;
    end
    wire [35:0] read_b = REGMODE_B == "OUTREG" ? out_b : latch_b;
    wire [17:0] do_b = WIDE ? read_b[35:18] : read_b[17:0];
    assign do_a = WIDE ? read_b[17:0] : REGMODE_A == "OUTREG" ? out_a : latch_a;
    assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = do_b;
endmodule
