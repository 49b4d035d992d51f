"""Human-readable description of a verified bundle (``sc2deploy info``)."""

from sc2deploy.bundle import Bundle, file_entries


def describe(bundle: Bundle) -> str:
    m = bundle.manifest
    model, inp = m["model"], m["model"]["input"]
    lines = [
        f"bundle     {bundle.path}",
        f"model      {model['name']} ({model['family']}){'  [demo student]' if model.get('demo') else ''}",
        f"input      {inp['layout']} {inp['shape']} {inp['dtype']}; resize {inp['resize']}, "
        f"crop {inp['crop']}, mean {inp['mean']}, std {inp['std']}; EXIF orientation "
        f"{'applied' if inp.get('exif_transpose') else 'ignored'}",
        f"latent     {model['latent']['shape']} {model['latent']['dtype']}: "
        f"{model['latent']['definition']}",
    ]
    prior = m.get("prior", {})
    if "file" in prior:
        formula = (prior.get("tables_formula") or {}).get("formula")
        lines.append(f"prior      {prior['kind']}, {prior['channels']} channels, tables from "
                     f"{prior['tables_source']}"
                     + (f" ({formula} formula)" if formula else "")
                     + f", digest {prior['digest'][:16]}")
    else:
        lines.append(f"prior      {prior.get('kind', 'none')}")
    tail = m.get("tail", {})
    if "file" in tail:
        lines.append(f"tail       {_tail_line(tail)}")
    else:
        lines.append(f"tail       none: {tail.get('reason', 'exported before tails existed')}")
    for name, entry in sorted(m.get("tails", {}).items()):
        lines.append(f"tail {name}  {_tail_line(entry)}")
    lines.append("artifacts")
    for name, art in sorted(m.get("artifacts", {}).items()):
        size = bundle.file(art["file"]).stat().st_size
        fid = art.get("fidelity", {})
        agree = f"{fid['agreement_pct']:.4f} % symbols equal to torch" if fid else "not verified"
        precision = " ".join(filter(None, (art["precision"], art.get("quantization"))))
        lines.append(f"  {name:<12} {art['file']:<16} {precision:<18} "
                     f"{size / 1024:8.1f} KiB  {agree}; run by {_ran(art)}")
        if art.get("speed"):  # recorded by build: against the fp32 head, in turns
            lines.append(f"  {'':<12} speed: {art['speed']['summary']}")
    prov = m.get("provenance", {})
    ckpt = prov.get("checkpoint", {})
    lines.append(f"checkpoint {ckpt.get('file')} sha256 {str(ckpt.get('sha256'))[:16]}…")
    lines.append(f"created    {prov.get('created')} with "
                 + ", ".join(f"{k} {v}" for k, v in sorted(prov.get("tools", {}).items())))
    count = sum(1 for _ in file_entries(m))
    lines.append(f"verified   manifest digest and {count} file hashes OK")
    return "\n".join(lines)


def _ran(art: dict) -> str:
    """What runs an artifact: recorded at build (``executed``), else its runtime and precision
    (a host check in older bundles: what its check runs)."""
    if art.get("executed"):
        return art["executed"]["text"]
    check = art.get("options", {}).get("host_check")
    runtime = art.get("runtime", "unknown runtime")
    return f"{runtime}: {check}" if check else f"{runtime} {art['precision']}"


def _tail_line(tail: dict) -> str:
    check = tail.get("verification", {})
    inputs = ", ".join(f"{i.get('name', 'symbols')} {i['shape']}"
                       for i in tail.get("inputs", [tail["input"]]))
    return (f"{tail['file']}: {inputs} -> logits {tail['output']['shape']} "
            f"({' -> '.join(tail.get('layers', []))}); top-1 identical to torch on "
            f"{check.get('top1_identical')}/{check.get('images')} latents")
