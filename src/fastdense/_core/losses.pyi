"""Type stubs for the compiled fastdense._core.losses (losses.pyx)."""
import numpy as np
import numpy.typing as npt

_Float = np.float32 | np.float64

def mse_checked(yhat: npt.NDArray[_Float], y: npt.NDArray[_Float],
                grad: npt.NDArray[_Float] | None = None) -> float: ...
