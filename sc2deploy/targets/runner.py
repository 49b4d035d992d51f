"""The runner contract: a context manager whose ``infer()`` validates, then runs (torch-free)."""

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from sc2deploy.errors import UsageError

_INT32 = np.iinfo(np.int32)


class Runner:
    """Base class: subclasses implement ``activate``, ``infer_impl`` and ``deactivate``."""

    def __init__(self, path: Path, input_shape: Sequence[int], input_name: str = "image",
                 threads: Optional[int] = None):
        self.path = Path(path)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.input_name = input_name
        self.threads = threads
        self._active = False

    def __enter__(self) -> "Runner":
        self.activate()
        self._active = True
        return self

    def __exit__(self, *exc) -> None:
        self._active = False
        self.deactivate()

    def infer(self, x: np.ndarray) -> np.ndarray:
        """Normalized float32 NCHW image → int32 symbols [1, C, H, W]."""
        if not self._active:
            raise UsageError("runner is not active: use it as `with load_runner(...) as r:`")
        if not isinstance(x, np.ndarray) or x.dtype != np.float32:
            got = getattr(x, "dtype", type(x).__name__)
            raise UsageError(f"Input tensor: image | Received dtype {got}. "
                             "Note: expected float32 (normalized NCHW)")
        if x.shape != self.input_shape:
            raise UsageError(f"Input tensor: image | Received incompatible shape: {x.shape}. "
                             f"Note: expected a shape compatible with: {self.input_shape}")
        return to_int32_symbols(self.infer_impl(np.ascontiguousarray(x)))

    def activate(self) -> None:
        raise NotImplementedError

    def infer_impl(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def deactivate(self) -> None:
        raise NotImplementedError


def to_int32_symbols(values: np.ndarray) -> np.ndarray:
    """Integer-valued floats → int32, refusing NaN or values beyond int32 (never wrapping)."""
    values = np.asarray(values)
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)):
            raise UsageError("the head produced NaN or infinite symbols")
        if values.size and (values.min() < _INT32.min or values.max() > _INT32.max):
            raise UsageError("the head produced symbols beyond the int32 range")
    return values.astype(np.int32)
