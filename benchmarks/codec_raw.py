"""Raw channels with fresh tables: the C coder's raw_encode/raw_decode vs constriction.

    python -m benchmarks.codec_raw [--cases 300] [--repeats 5] [--seed 0] [--class NAME]
                                   [--json PATH]

Each case is a list of channels, each with a fresh random pmf (float64, not
always normalized) and int32 symbols, drawn from a seeded generator; a size
class fixes the ranges (``CLASSES``); ``random`` is the mix of issue 21 (1-5
channels, alphabets of 2-1,999 entries, 0-3,000 symbols each). sc2deploy's C
coder runs through the public ``raw_encode(..., coder="c")`` and
``raw_decode``; constriction 0.5 is called directly (RangeEncoder and
``Categorical(pmf, perfect=False)`` per channel, as ConstrictionBackend does).
Neither caches a table between calls. Timings are interleaved (for each
repeat: every case, every coder), the best of the repeats per case; a class's
ratio is constriction's total time over the C coder's (> 1: the C coder is
faster). Every case's two streams are compared word for word, and each coder
decodes the other's stream back to the symbols.
"""

import importlib.metadata
import os
import platform
import sys
import time
from dataclasses import dataclass
from typing import Tuple

import numpy as np

from benchmarks.common import parse, parser, positive, publish
from sc2deploy.codec import raw_decode, raw_encode


@dataclass(frozen=True)
class SizeClass:
    """Ranges (inclusive) a case of this class is drawn from."""

    label: str
    channels: Tuple[int, int]
    alphabet: Tuple[int, int]
    symbols: Tuple[int, int]
    pmf: str = "random"  # "random": the kinds of _random_pmf; "peaked": latent-like


CLASSES = {c.label.split(":")[0]: c for c in [
    SizeClass("random: issue 21's mix", (1, 5), (2, 1999), (0, 3000)),
    SizeClass("tiny: one channel, alphabet 2-63, 0-10 symbols", (1, 1), (2, 63), (0, 10)),
    SizeClass("short-small: symbols 0-10, alphabet 2-63", (1, 5), (2, 63), (0, 10)),
    SizeClass("short-large: symbols 0-10, alphabet 64-1999", (1, 5), (64, 1999), (0, 10)),
    SizeClass("medium-small: symbols 10-300, alphabet 2-63", (1, 5), (2, 63), (10, 300)),
    SizeClass("medium-large: symbols 10-300, alphabet 64-1999", (1, 5), (64, 1999), (10, 300)),
    SizeClass("long-small: symbols 300-3000, alphabet 2-63", (1, 5), (2, 63), (300, 3000)),
    SizeClass("long-large: symbols 300-3000, alphabet 64-1999", (1, 5), (64, 1999),
              (300, 3000)),
    # The demo student's latent: 12 channels of 55 x 55, tables of 3-37 entries.
    SizeClass("latent: 12 channels x 3,025 symbols, alphabet 3-40", (12, 12), (3, 40),
              (3025, 3025), "peaked"),
]}


def _random_pmf(rng, n: int) -> np.ndarray:
    """Dirichlet draws from nearly one-hot to nearly flat, unnormalized by a random scale."""
    concentration = rng.choice([0.02, 0.3, 1.0, 30.0])
    return (rng.dirichlet(np.full(n, concentration)) + 1e-12) * rng.choice([0.5, 3.0, 1e-20])


def _peaked_pmf(rng, n: int) -> np.ndarray:
    """A discretized Laplace around a random centre, as a latent prior's tables look."""
    x = np.arange(n) - rng.uniform(0, n - 1)
    return np.exp(-np.abs(x) / rng.uniform(0.3, 4.0)) + 1e-9


def draw_case(rng, size: SizeClass):
    """(symbols, pmfs), fresh arrays; a channel's symbols follow its pmf or are uniform."""
    symbols, pmfs = [], []
    for _ in range(int(rng.integers(size.channels[0], size.channels[1] + 1))):
        n = int(rng.integers(size.alphabet[0], size.alphabet[1] + 1))
        m = int(rng.integers(size.symbols[0], size.symbols[1] + 1))
        p = (_peaked_pmf if size.pmf == "peaked" else _random_pmf)(rng, n).astype(np.float64)
        if size.pmf == "peaked" or rng.random() < 0.5:
            s = rng.choice(n, size=m, p=p / p.sum())
        else:
            s = rng.integers(0, n, size=m)
        pmfs.append(p)
        symbols.append(s.astype(np.int32))
    return symbols, pmfs


def constriction_coders():
    """Encode and decode functions calling constriction directly."""
    import constriction

    encoder_type = constriction.stream.queue.RangeEncoder
    decoder_type = constriction.stream.queue.RangeDecoder
    categorical = constriction.stream.model.Categorical

    def encode(symbols, pmfs):
        encoder = encoder_type()
        for sym, pmf in zip(symbols, pmfs):
            model = categorical(pmf, perfect=False)
            if sym.size:
                encoder.encode(sym, model)
        return encoder.get_compressed()

    def decode(words, sizes, pmfs):
        decoder = decoder_type(words)
        out = []
        for size, pmf in zip(sizes, pmfs):
            model = categorical(pmf, perfect=False)
            out.append(decoder.decode(model, size) if size else np.zeros(0, np.int32))
        return out

    return encode, decode


def _best(fn, number: int, best: float) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return min(best, (time.perf_counter() - start) / number)


def run_class(size: SizeClass, cases: int, repeats: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    k_encode, k_decode = constriction_coders()
    drawn = [draw_case(rng, size) for _ in range(cases)]
    jobs, identical = [], 0
    for symbols, pmfs in drawn:
        sizes = [s.size for s in symbols]
        words = k_encode(symbols, pmfs)
        words_c = raw_encode(symbols, pmfs, coder="c")
        back_c = raw_decode(words, sizes, pmfs, coder="c")
        back_k = k_decode(words_c, sizes, pmfs)
        identical += bool(np.array_equal(words, words_c) and all(
            np.array_equal(a, b) and np.array_equal(a, c)
            for a, b, c in zip(symbols, back_c, back_k)))
        start = time.perf_counter()
        k_encode(symbols, pmfs)
        number = max(1, min(200, int(50e-6 / max(time.perf_counter() - start, 1e-7))))
        jobs.append((number, {
            "c_encode": lambda s=symbols, p=pmfs: raw_encode(s, p, coder="c"),
            "constriction_encode": lambda s=symbols, p=pmfs: k_encode(s, p),
            "c_decode": lambda w=words, n=sizes, p=pmfs: raw_decode(w, n, p, coder="c"),
            "constriction_decode": lambda w=words, n=sizes, p=pmfs: k_decode(w, n, p)}))
    best = [dict.fromkeys(fns, float("inf")) for _, fns in jobs]
    for r in range(repeats):  # interleaved: every case and coder once per repeat
        for (number, fns), row in zip(jobs, best):
            names = list(fns) if r % 2 == 0 else list(fns)[::-1]
            for name in names:
                row[name] = _best(fns[name], number, row[name])
    total = {name: sum(row[name] for row in best) for name in best[0]} if best else {}
    per_case = {op: [row[f"constriction_{op}"] / row[f"c_{op}"] for row in best]
                for op in ("encode", "decode")}
    return {
        "cases": cases, "identical_cases": identical,
        "channels": sum(len(s) for s, _ in drawn),
        "symbols": int(sum(x.size for s, _ in drawn for x in s)),
        "table_entries": int(sum(p.size for _, ps in drawn for p in ps)),
        "seconds": total,
        "c_vs_constriction_encode": total["constriction_encode"] / total["c_encode"],
        "c_vs_constriction_decode": total["constriction_decode"] / total["c_decode"],
        "median_case_ratio_encode": float(np.median(per_case["encode"])),
        "median_case_ratio_decode": float(np.median(per_case["decode"])),
        "slowest_case_ratio_encode": float(np.min(per_case["encode"])),
        "slowest_case_ratio_decode": float(np.min(per_case["decode"])),
    }


def conditions() -> dict:
    """What the numbers depend on, recorded next to them."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"machine": platform.machine(), "processor": platform.processor() or None,
            "cpus": os.cpu_count(), "load_average_1_5_15": load,
            "python": platform.python_version(), "numpy": np.__version__,
            "constriction": importlib.metadata.version("constriction")}


def run(cases: int, repeats: int, seed: int, only=None) -> dict:
    result = {"cases_per_class": cases, "repeats": repeats, "seed": seed,
              "conditions_before": conditions(), "classes": {}}
    for i, (name, size) in enumerate(CLASSES.items()):
        if only is None or name in only:
            result["classes"][name] = {"label": size.label,
                                       **run_class(size, cases, repeats, seed + i)}
    result["conditions_after"] = conditions()
    return result


def markdown(r: dict, command: str) -> str:
    load = r["conditions_before"]["load_average_1_5_15"]
    lines = [
        "## Codec: raw channels, fresh tables", "", f"Command: `{command}`", "",
        f"{r['cases_per_class']} seeded cases per class, best of {r['repeats']} interleaved "
        "repeats; C coder through `raw_encode`/`raw_decode(coder=\"c\")`, constriction "
        f"{r['conditions_before']['constriction']} called directly. Ratio: constriction's time "
        "over the C coder's (> 1: C faster); per case: median and slowest.",
        f"Machine: {r['conditions_before']['machine']}, {r['conditions_before']['cpus']} CPUs, "
        f"load average {load[0]:.2f} before the run." if load else "",
        "", "| class | symbols / case | encode | decode | per case encode | per case decode "
        "| identical streams |", "|---|---|---|---|---|---|---|"]
    for name, c in r["classes"].items():
        lines.append(
            f"| {c['label']} | {c['symbols'] / c['cases']:,.0f} | ×{c['c_vs_constriction_encode']:.2f} "
            f"| ×{c['c_vs_constriction_decode']:.2f} | ×{c['median_case_ratio_encode']:.2f} / "
            f"×{c['slowest_case_ratio_encode']:.2f} | ×{c['median_case_ratio_decode']:.2f} / "
            f"×{c['slowest_case_ratio_decode']:.2f} | {c['identical_cases']}/{c['cases']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = parser(__file__, __doc__)
    p.add_argument("--cases", type=positive, default=300, help="cases per size class")
    p.add_argument("--repeats", type=positive, default=5, help="timings per case (the best counts)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--class", dest="only", action="append", choices=list(CLASSES),
                   metavar="NAME", help="run only this size class (repeatable; default: all): "
                   + "; ".join(c.label for c in CLASSES.values()))
    args = parse(p, argv)
    result = run(args.cases, args.repeats, args.seed, args.only)
    publish(markdown, result, __file__, argv, args.json)
    bad = {name: c for name, c in result["classes"].items() if c["identical_cases"] != c["cases"]}
    for name, c in bad.items():
        print(f"error: {name}: the C coder's stream differs from constriction's (or does not "
              f"decode back) in {c['cases'] - c['identical_cases']} of {c['cases']} cases",
              file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
