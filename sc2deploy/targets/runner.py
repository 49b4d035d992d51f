"""The runner contract: a context manager whose ``infer()`` validates, then runs (torch-free)."""

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from sc2deploy.errors import DeviceError, UsageError
from sc2deploy.targets.session import SessionSettings

_INT32 = np.iinfo(np.int32)


class Runner:
    """Base class: subclasses implement ``activate``, ``infer_impl`` and ``deactivate``.

    ``infer`` validates the input (float32, the declared shape), runs, then converts the
    output with ``postprocess`` (heads: integer-valued floats to int32 symbols).
    """

    what = "image"  # the input, in error messages

    def __init__(self, path: Path, input_shape: Sequence[int], input_name: str = "image",
                 threads: Optional[int] = None):
        self.path = Path(path)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.input_name = input_name
        self.threads = threads
        self.settings = SessionSettings(threads or None)  # load_runner may set tuned ones
        self._active = False

    def __enter__(self) -> "Runner":
        self.activate()
        self._active = True
        return self

    def __exit__(self, *exc) -> None:
        self._active = False
        self.deactivate()

    def infer(self, x: np.ndarray) -> np.ndarray:
        """Normalized float32 NCHW image → int32 symbols [1, C, H, W] (for a head)."""
        self.check_input(x, self.input_shape)
        return self.postprocess(self.infer_impl(np.ascontiguousarray(x)))

    def check_input(self, x: np.ndarray, shape: Sequence[int]) -> None:
        """Refuse an inactive runner, a non-float32 input or one of another ``shape``."""
        if not self._active:
            raise UsageError("runner is not active: use it as `with load_runner(...) as r:`")
        if not isinstance(x, np.ndarray) or x.dtype != np.float32:
            got = getattr(x, "dtype", type(x).__name__)
            raise UsageError(f"Input tensor: {self.what} | Received dtype {got}. "
                             "Note: expected float32 (NCHW)")
        if x.shape != tuple(shape):
            raise UsageError(f"Input tensor: {self.what} | Received incompatible shape: "
                             f"{x.shape}. Note: expected a shape compatible with: "
                             f"{tuple(shape)}")

    def postprocess(self, y: np.ndarray) -> np.ndarray:
        return to_int32_symbols(y)

    def activate(self) -> None:
        raise NotImplementedError

    def infer_impl(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def deactivate(self) -> None:
        raise NotImplementedError


def to_int32_symbols(values: np.ndarray) -> np.ndarray:
    """Integer-valued floats → int32, refusing NaN or values beyond int32 (never wrapping).

    Such values come from the runtime, not from the (validated) input: a :class:`DeviceError`.
    """
    values = np.asarray(values)
    if values.dtype.kind == "f":
        bad = int(values.size - np.count_nonzero(np.isfinite(values)))
        if bad:
            raise DeviceError(f"the head produced {bad} NaN or infinite symbols of {values.size}, "
                              "expected finite integers: the runtime computed garbage; run "
                              "sc2deploy verify BUNDLE, and rebuild the artifact if it fails")
        if values.size and (values.min() < _INT32.min or values.max() > _INT32.max):
            raise DeviceError(f"the head produced symbols in [{values.min():.6g}, "
                              f"{values.max():.6g}], beyond the int32 range expected: the "
                              "runtime computed garbage; run sc2deploy verify BUNDLE, and "
                              "rebuild the artifact if it fails")
    return values.astype(np.int32)
