"""``qir.report.parse_stat``: which Yosys cells count as LUTs (no Yosys run needed)."""
from qir.report import parse_stat

XCUP_STAT = """
=== design hierarchy ===

   Number of wires:               10
   Number of cells:              29
     BUFG                            1
     CARRY4                          3
     FDRE                            4
     INV                             5
     LUT2                            6
     LUT6                            2
     MUXF7                           1
     MUXF8                           2
     MUXF9                           1
     IBUF                            4

Longest topological path in top (length=7):
"""


def test_xcup_luts_include_inv_and_list_muxf():
    """An INV is a one-input LUT on xcup: it counts as a LUT (issue #13); MUXF and CARRY cells
    are listed beside the LUTs, not added to them."""
    s = parse_stat(XCUP_STAT, "xilinx")
    assert (s["lut"], s["lut_only"], s["inv"]) == (13, 8, 5)
    assert (s["muxf"], s["carry"], s["ff"], s["dsp"]) == (4, 3, 4, 0)
    assert s["longest_path_cells"] == 7


def test_ecp5_lut4_and_muxes():
    text = XCUP_STAT.replace("INV  ", "LUT4 ").replace("LUT2 ", "CCU2C").replace("MUXF7", "PFUMX")
    s = parse_stat(text.replace("FDRE", "TRELLIS_FF"), "ecp5")
    assert (s["lut"], s["carry"], s["muxf"], s["ff"]) == (5, 6, 1, 4)


def test_xcup_block_ram_lutram_and_dsp():
    """Memories (stream line buffers) and DSPs: RAMB36/RAMB18 counted apart, every distributed-RAM
    primitive as LUTRAM with the SLICEM LUTs it occupies; none of them are logic LUTs."""
    mem = "\n".join(f"     {c:<30}{n}" for c, n in (("RAMB36E2", 2), ("RAMB18E2", 3), ("RAM64M8", 5),
                                                      ("RAM32M", 2), ("RAM64X1D", 1), ("DSP48E2", 4)))
    s = parse_stat(XCUP_STAT.replace("     MUXF7", mem + "\n     MUXF7"), "xilinx")
    assert (s["bram"], s["bram36"], s["bram18"]) == (5, 2, 3)
    assert (s["lutram"], s["lutram_luts"]) == (8, 5 * 8 + 2 * 4 + 1 * 2)
    assert s["dsp"] == 4 and s["lut"] == 13
    odd = parse_stat(XCUP_STAT.replace("     MUXF7", "     RAM16X8S  1\n     MUXF7"), "xilinx")
    assert odd["lutram"] == 1 and odd["lutram_luts"] is None  # a cell without a LUT count: not guessed
