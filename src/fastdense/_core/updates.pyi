"""Type stubs for the compiled fastdense._core.updates (updates.pyx). The rule ids,
hyper-parameter layout and state buffers are documented in updates.pxd."""
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

_Float = np.float32 | np.float64

RULES: dict[str, int]
PARALLEL_MIN_VALUES: int

def get_num_threads() -> int: ...
def set_isa(name: str | None = ...) -> str: ...
def get_isa() -> str: ...
def set_num_threads(k: int) -> None: ...
def optimizer_step_checked(p: npt.NDArray[_Float], g: npt.NDArray[_Float],
                           state: list[npt.NDArray[_Float]], rule: int,
                           h: Sequence[float], lr: float, t: int, clipnorm: float = 0.0,
                           clipvalue: float = 0.0, global_clipnorm: float = 0.0,
                           weight_decay: float = 0.0,
                           seg: npt.NDArray[np.int64] | None = None) -> None: ...
def rule_update_checked(p: npt.NDArray[_Float], g: npt.NDArray[_Float],
                        state: list[npt.NDArray[_Float]], rule: int, h: Sequence[float],
                        lr: float, t: int, clipvalue: float = 0.0,
                        weight_decay: float = 0.0, pre: float = 1.0,
                        post: float = 1.0) -> None: ...
def clipped_sumsq_checked(g: npt.NDArray[_Float], pre: float = 1.0,
                          clipvalue: float = 0.0) -> float: ...
def state_count_checked(rule: int, h: Sequence[float]) -> int: ...
def sgd_update_checked(p: npt.NDArray[_Float], g: npt.NDArray[_Float], lr: float) -> None: ...
