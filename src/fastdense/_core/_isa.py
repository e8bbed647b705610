"""Names of the instruction sets the hand-written loops are compiled for (fd_isa.h's
FD_ISA_BASE, FD_ISA_AVX2, FD_ISA_AVX512), shared by the set_isa/get_isa of each extension
module (dense, updates): each module has its own selection, this only maps names."""
from __future__ import annotations

from collections.abc import Callable

ISA_NAMES = {"base": 0, "avx2": 1, "avx512": 2}
_BY_ID = {v: k for k, v in ISA_NAMES.items()}


def select(name: str | None, set_id: Callable[[int], int]) -> str:
    """Validate `name`, ask `set_id` (a module's fd_set_isa: −1 for the best this CPU has,
    lowered to it) for that set, and return the name of the one in force."""
    if name is not None and name not in ISA_NAMES:
        raise ValueError(f"unknown instruction set {name!r}: expected one of {list(ISA_NAMES)}")
    return _BY_ID[set_id(-1 if name is None else ISA_NAMES[name])]


def name_of(isa_id: int) -> str:
    return _BY_ID[isa_id]
