"""The FPGA family an elaborating platform stands for, spelled as hwgen's boards spell it ("ice40", "ecp5")."""
from __future__ import annotations


def family_of(platform) -> str | None:
    """`platform.family` in lower case, or None without a platform (simulation).

    Amaranth's platforms spell it their own way (the iCE40's is "iCE40", ECP5's "ecp5"), while the per-family
    forms of the RTL and hwgen.fit use the boards' lower-case names, so every check goes through here: compared
    as it stands, the iCEBreaker's platform had matched no iCE40 form."""
    name = getattr(platform, "family", None)
    return name.lower() if isinstance(name, str) else None


def unless_ice40(choice: bool | None, platform) -> bool:
    """`choice`, or when None: True everywhere but on the iCE40, whose UP5K cannot spare the logic cells that a
    timing form (a third FIFO entry, a register per bit of a row) costs."""
    return choice if choice is not None else family_of(platform) != "ice40"


class FamilyTarget:
    """A stand-in platform for simulation: elaborates one family's forms (rtl_templates' `family_of` checks)
    without that family's toolchain."""

    def __init__(self, family: str):
        self.family = family
