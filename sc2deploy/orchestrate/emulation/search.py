"""``build --search --emulate CPU``: the search picks by fidelity on emulated aarch64 CPUs.

    host: each configuration built and measured as by ``build --search`` (builders.build)
    qemu-aarch64-static -cpu CPU: one python per CPU runs every candidate on a few of the
        evaluation images (``emulation.verify``'s machinery)
    host: fidelity_stats + the gate, per candidate and CPU ─ keep the first configuration in
        search order (the cheapest) that passes on the host AND is refuted on no emulated CPU
        (a task verdict on a few emulated images is often undecided: it can refute, not
        show a pass), else the most faithful (on its worst CPU), refused unless
        --allow-low-fidelity
    manifest["artifacts"][T]["fidelity_by_cpu"]: the host's key and each emulated CPU's

Emulated time is meaningless, so the choice is by fidelity only, and the log and the row
say so. Targets without a search space are one candidate, measured the same way.
"""

import shutil
from pathlib import Path
from typing import Dict, List, Sequence

from sc2deploy.builders.build import (BuildOptions, Choice, build_targets, candidates,
                                      every_one_refused, faithfulness, fidelity_stats,
                                      host_fidelity, refused_note)
from sc2deploy.bundle import Bundle
from sc2deploy.errors import EmulationError, UsageError
from sc2deploy.log import logger
from sc2deploy.orchestrate.emulation.emulator import Emulator
from sc2deploy.orchestrate.emulation.verify import (EmulateOptions, cost, emulated_entry,
                                                    emulation_indices, run_files, subset)
from sc2deploy.targets.gate import refuted
from sc2deploy.targets.registry import get_target

PICKED = "picked by fidelity on {cpus} (emulated): emulated time is meaningless"


def build_emulated(bundle_path: Path, names: Sequence[str], options: BuildOptions,
                   emulate: EmulateOptions) -> List[Dict]:
    """``build_targets`` whose search is :class:`EmulatedSearch` (needs ``options.search``)."""
    emulate.check_cpus()
    if not options.search:
        raise UsageError(f"build --emulate {' --emulate '.join(emulate.cpus)} received without "
                         "--search, expected both: the emulated CPUs choose among the "
                         "configurations of a search; to measure built artifacts on an "
                         f"emulated CPU, run `sc2deploy verify {bundle_path} --emulate CPU`")
    for name in dict.fromkeys(names):
        target = get_target(name)
        if target.host_check or target.build_on == "device" or target.runtime == "tensorrt":
            raise UsageError(f"{name} runs on a Jetson (TensorRT), not on an emulated CPU: "
                             f"build it without --emulate")
    Bundle.open(bundle_path)  # a clear error for a bad bundle before the emulator's setup
    emu = Emulator(emulate.work, list(emulate.cpus), log=logger.info)
    emu.check_host()
    logger.info("emulation: setting up %s (cached by stamps) ...", emu.layout.work)
    emu.setup()
    return build_targets(bundle_path, names, options, search=EmulatedSearch(emu, emulate))


class EmulatedSearch:
    """A ``search`` for ``build_targets``: candidates built and measured on the host, then on
    each emulated CPU; the cheapest passing everywhere is kept."""

    def __init__(self, emu: Emulator, emulate: EmulateOptions):
        self.emu, self.emulate = emu, emulate

    def __call__(self, txn, target, options: BuildOptions, calibration, reference) -> Choice:
        built = list(candidates(txn, target, options, calibration, reference))
        found = [c for c in built if not c.refused]  # refused: no artifact to run
        refused = [c for c in built if c.refused]
        if not found:
            raise every_one_refused(target, refused)
        indices = emulation_indices(len(reference.inputs), self.emulate.images)
        small = subset(reference, indices)
        runs = {str(i): (target.name, c.path) for i, c in enumerate(found)}
        by_cpu: List[Dict[str, Dict]] = [{} for _ in found]  # per candidate: key -> entry
        spent = {}
        for cpu in self.emulate.cpus:
            logger.info("emulation: %s runs %d %s candidate%s on %d images ...", cpu,
                        len(found), target.name, "s" if len(found) > 1 else "", len(indices))
            run = run_files(self.emu, cpu, txn.bundle, runs, small.inputs,
                            self.emulate.timeout_s)
            inference = 0.0
            for i, candidate in enumerate(found):
                info = run.info[str(i)]
                if "skipped" in info:
                    raise EmulationError(f"{target.name} on {cpu}: {info['skipped']}")
                stats = fidelity_stats(txn.bundle, small, run.symbols[str(i)])
                verdict = options.verdict(target.precision, stats)
                key, entry = emulated_entry(cpu, info, stats, verdict)
                by_cpu[i][key] = entry
                inference += info["seconds"]
                task = stats.get("task")
                logger.info("  on %s: %-60s %8.4f %% equal%s%s", cpu, candidate.describe(),
                            stats["agreement_pct"],
                            f", top-1 {task['top1_agree']}/{task['images']}, KL "
                            f"{task['kl_mean']:.2e}" if task else "",
                            "  passes" if verdict["passed"] else "")
            spent[cpu] = {**cost(run, len(indices)),
                          "inference_s_per_image": round(inference / len(found) / len(indices),
                                                         2)}
            logger.info("emulation cost on %s: %.1f s for %d candidates x %d images (process "
                        "start included); head inference %.2f s per image", cpu, run.seconds,
                        len(found), len(indices), spent[cpu]["inference_s_per_image"])
        return self._choose(target, found, by_cpu, spent, refused)

    def _choose(self, target, found, by_cpu, spent, refused=()) -> Choice:
        """The first candidate passing everywhere, else the most faithful on its worst CPU."""
        def measured(i):  # (where, stats, verdict): the host first
            host = [(found[i].verdict["cpu"], found[i].stats, found[i].verdict)]
            return host + [(f"{k} (emulated)", e["stats"], e["verdict"])
                           for k, e in by_cpu[i].items()]

        def failures(i):  # the host must pass; an emulated CPU's few images must not refute
            host, *emulated = measured(i)
            return ([host] if not host[2]["passed"] else []) + [m for m in emulated
                                                                if refuted(m[2])]

        passing = [i for i in range(len(found)) if not failures(i)]
        pick = passing[0] if passing else max(
            range(len(found)), key=lambda i: min(faithfulness(s) for _, s, _ in measured(i)))
        for i, candidate in enumerate(found):
            if i != pick and candidate.stage != found[pick].stage:
                shutil.rmtree(candidate.stage, ignore_errors=True)
        kept = found[pick]
        failing = failures(pick)
        undecided = [w for w, _, v in measured(pick)[1:] if v.get("decision") == "undecided"]
        where, stats, verdict = failing[0] if failing else measured(pick)[0]
        everywhere = " and ".join(w for w, _, _ in measured(pick))
        verdict = {**{k: v for k, v in verdict.items() if k != "cpu"}, "passed": not failing,
                   "cpu": where if failing else everywhere}
        tried = [{**c.tried(), "fidelity_by_cpu": {
            k: {"stats": e["stats"], "passed": e["verdict"]["passed"],
                "decision": e["verdict"].get("decision")}
            for k, e in by_cpu[i].items()}} for i, c in enumerate(found)] + [
                c.tried() for c in refused]
        recorded = kept.recorded if kept.config is None else {**kept.recorded, "search": tried}
        note = PICKED.format(cpus=", ".join(f"aarch64/{c}" for c in self.emulate.cpus))
        if failing:
            note = f"no configuration passed everywhere; {note}"
        elif undecided:
            note = (f"{note}; the task verdict rests on the host's images: too few ran on "
                    f"{', '.join(undecided)} to decide (they refute nothing)")
        if refused:
            note = f"{note}; {refused_note(refused, len(tried))}"
        return Choice(kept, recorded, verdict,
                      {**host_fidelity(target, kept.stats, kept.verdict), **by_cpu[pick]},
                      tried=len(tried), note=note, deciding=stats, row={"emulation": spent})
