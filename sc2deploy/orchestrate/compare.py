"""Compare the run folders of several platforms with a reference's: bytes and int32 symbols.

::

    RUN/REFERENCE/TARGET/{containers/STEM.s2c, symbols.npy, pre_round.npy}
    RUN/PLATFORM/TARGET/{containers/STEM.s2c, symbols.npy}  ─ compare_runs ─> problems, lines

Containers must be equal byte for byte and symbols value for value; floats are never
compared. A symbol off by one where the reference's torch pre-round value lies within the
gate's ``TIE_TOLERANCE`` of k + 0.5 is a *tie* (two correct float kernels may round it
either way): an image that differs only by ties is listed, not failed. Reads ``.npy``
files with the standard library only.
"""

import ast
import math
import sys
from array import array
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from sc2deploy.errors import CompareError

Values = Tuple[Tuple[int, ...], array]  # (shape, flat C-ordered values)


def first_difference(a: bytes, b: bytes) -> Optional[int]:
    """Offset of the first differing byte (or of the end of the shorter); None if equal."""
    if a == b:
        return None
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def read_npy_int32(path: Path, kind: str = "i") -> Values:
    """A C-ordered little-endian int32 (kind "i") or float32 ("f") .npy file, without numpy."""
    data = path.read_bytes()
    if data[:6] != b"\x93NUMPY":
        raise CompareError(f"{path} is not a .npy file")
    major = data[6]
    size_bytes = 2 if major == 1 else 4
    header_len = int.from_bytes(data[8:8 + size_bytes], "little")
    start = 8 + size_bytes
    header = ast.literal_eval(data[start:start + header_len].decode("latin1"))
    if header["descr"] not in (f"<{kind}4", f"|{kind}4") or header["fortran_order"]:
        raise CompareError(f"{path}: expected C-ordered <{kind}4 data, got {header}")
    values = array(kind)
    values.frombytes(data[start + header_len:])
    if sys.byteorder != "little":
        values.byteswap()
    shape = tuple(header["shape"])
    expected = 1
    for dim in shape:
        expected *= dim
    if len(values) != expected:
        raise CompareError(f"{path}: {len(values)} values for shape {shape}")
    return shape, values


def unravel(index: int, shape: Sequence[int]) -> Tuple[int, ...]:
    out = []
    for dim in reversed(shape):
        out.append(index % dim)
        index //= dim
    return tuple(reversed(out))


def symbols_difference(ref: Values, got: Values, image: int,
                       pre_round: Optional[Values] = None) -> Tuple[Optional[str], bool]:
    """How the symbols of image `image` ([N, C, H, W] arrays) differ (None if equal), and
    whether every difference is a .5 tie (off by one where the host's pre-round value lies
    within TIE_TOLERANCE of k + 0.5: two correct float kernels may round it either way)."""
    (ref_shape, ref_values), (got_shape, got_values) = ref, got
    if ref_shape != got_shape:
        return f"symbol shape {list(got_shape)} instead of {list(ref_shape)}", False
    per_image = len(ref_values) // ref_shape[0] if ref_shape[0] else 0
    lo, hi = image * per_image, (image + 1) * per_image
    diff = [i for i in range(lo, hi) if ref_values[i] != got_values[i]]
    if not diff:
        return None, False
    ties = 0
    if pre_round is not None and pre_round[0] == ref_shape:
        from sc2deploy.targets.gate import TIE_TOLERANCE  # numpy: only when there is a diff

        ties = sum(1 for i in diff if abs(ref_values[i] - got_values[i]) == 1
                   and near_half(pre_round[1][i], TIE_TOLERANCE))
    where = unravel(diff[0] - lo, ref_shape[1:])
    text = (f"{len(diff)} of {per_image} symbols differ (first at [c, y, x] = {list(where)}: "
            f"{got_values[diff[0]]}, reference {ref_values[diff[0]]})")
    if ties:
        text += f", {ties} of them at .5 ties"
    return text, ties == len(diff)


def near_half(value: float, tolerance: float) -> bool:
    """Whether |value| lies within tolerance of k + 0.5 (the gate's tie rule)."""
    frac = abs(value) - math.floor(abs(value))
    return abs(frac - 0.5) <= tolerance


def diff_summary(target: str, platform: str, stem: str, ref_bytes: Optional[bytes],
                 got_bytes: Optional[bytes], symbols: Optional[str],
                 reference: str) -> Optional[str]:
    """One line saying how a platform's result for one image differs from the reference's."""
    parts = []
    if ref_bytes is None or got_bytes is None:
        parts.append("container missing on " + (reference if ref_bytes is None else platform))
    else:
        offset = first_difference(ref_bytes, got_bytes)
        if offset is not None:
            parts.append(f"container {len(got_bytes)} bytes ({reference}: {len(ref_bytes)}), "
                         f"first differing byte at offset {offset}")
    if symbols:
        parts.append(symbols)
    if not parts:
        return None
    return f"DIFFERENT: target {target}, cpu {platform}, image {stem}: " + "; ".join(parts)


def compare_runs(run_dir: Path, targets: Sequence[str], platforms: Sequence[str],
                 stems: Sequence[str]) -> Tuple[List[str], List[str]]:
    """Compare run/PLATFORM/TARGET/{containers/STEM.s2c, symbols.npy} with platforms[0]'s.

    Returns (one line per differing image, one summary line per platform and target). A
    platform folder without containers was not run for that target and is skipped; one
    without symbols.npy is compared on container bytes only. An image whose symbols differ
    only at .5 ties (see symbols_difference; needs the reference's pre_round.npy) is counted
    apart and is not a problem: its container then differs too, as it must.
    """
    problems, lines = [], []
    reference = platforms[0]
    for target in targets:
        ref_dir = run_dir / reference / target
        ref_sym = read_npy_int32(ref_dir / "symbols.npy")
        pre_file = ref_dir / "pre_round.npy"
        pre_round = read_npy_int32(pre_file, "f") if pre_file.is_file() else None
        for platform in platforms[1:]:
            got_dir = run_dir / platform / target
            if not (got_dir / "containers").is_dir():
                continue
            sym_file = got_dir / "symbols.npy"
            got_sym = read_npy_int32(sym_file) if sym_file.is_file() else None
            same = tied = 0
            for i, stem in enumerate(stems):
                ref_b, got_b = (_read_or_none(d / "containers" / f"{stem}.s2c")
                                for d in (ref_dir, got_dir))
                sym, only_ties = (symbols_difference(ref_sym, got_sym, i, pre_round)
                                  if got_sym is not None else (None, False))
                if only_ties and ref_b is not None and got_b is not None:
                    tied += 1
                    lines.append(f"tie: target {target}, cpu {platform}, image {stem}: {sym}")
                    continue
                line = diff_summary(target, platform, stem, ref_b, got_b, sym, reference)
                if line:
                    problems.append(line)
                else:
                    same += 1
            what = "containers" + (" and int32 symbols" if got_sym is not None else "")
            lines.append(f"compare {target} {platform} vs {reference}: {same}/{len(stems)} "
                         f"images with identical {what}"
                         + (f", {tied} differing only at .5 ties" if tied else ""))
    return problems, lines


def _read_or_none(path: Path) -> Optional[bytes]:
    return path.read_bytes() if path.is_file() else None
