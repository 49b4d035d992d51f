"""Train the demo's teacher and its β ladder of entropic students, as the seeds do.

Dev-only, one command from nothing: ``make demo-ladder`` (58 min 21 s on 2 CPU
cores; the ladder points are trained one after the other, each warm-started from the
previous, smaller β: a large β from nothing collapses the latent, tried). Writes, each file
atomically as soon as it is done::

    sc2deploy/data/demo_teacher.onnx            the teacher (baselines classify with it)
    sc2deploy/data/demo_ladder/demo-beta<B>.pt  one student per β, torchdistill layout
    build/demo-ladder/teacher.pt                the teacher's weights (for --resume)

The task is the generated 10-class textures of ``sc2deploy.orchestrate.demo_data``
(train seed 1, held-out seed 2), preprocessed as the head's input (256 px, 224 crop,
ImageNet mean/std). The recipe is the entropic student's (WACV'22)::

    teacher (ResNet-style): conv5/2 ─ BN ─ ReLU ─ maxpool ─ layer1 ─ avgpool5/1 │ layer2 ─ layer3
                            ─ layer4 ─ fc
    student:   encoder ─ ŷ ─ decoder (layer1's shape)             │ the teacher's layer2-4 + fc
      encoder: conv5/2 ─ GDN ─ conv5/2 ─ GDN ─ conv4/2 (ŷ: N x 28 x 28 at 224 px)
      decoder: convT4/2 ─ IGDN ─ conv2 ─ IGDN ─ conv2 (layer1's 56 x 56)

The latent is one stride coarser than the published entropic student's (conv2/1, 55 x 55):
the teacher's split-point feature is averaged over 5 x 5 positions anyway, and at the same
top-1 the coarser latent needs about 30 % fewer bytes (β = 0.3: 98.7 % at 770 B against
97.5 % at 1,106 B on 1,200 held-out images). ``sc2deploy export`` reads both layouts.

    stage 1: encoder + decoder + factorized prior learn the teacher's features (generalized
             head network distillation): the decoder's output, and what the teacher's frozen
             layer2-4 make of it, against the teacher's own, with ŷ = y + U(-1/2, 1/2):
             mean over k = 1..4 of MSE(layer_k, teacher's layer_k) / Var(teacher's layer_k)
             + β · bits / pixel (random 112 px crops)
             CompressAI's auxiliary loss fits the prior's quantiles; the tables as update().
    stage 2: encoder and prior frozen; decoder + layer2-4 + fc fine-tuned on the rounded
             symbols with (1 - α) · CE(labels) + α · T² · KL(teacher ‖ student at T).

Saved as ``{'model': state_dict, 'optimizer': None, 'lr_scheduler': None,
'best_value': held-out top-1, 'args': Namespace(recipe)}`` with the WACV'22 key names
(``backbone.bottleneck_layer.{encoder,entropy_bottleneck,decoder}.*``, ``backbone.layer2-4.*``,
``fc.*``), the tables filled as after ``update()``: ``sc2deploy export`` loads it like a
published checkpoint.
"""

import argparse
import io
import json
import time
from pathlib import Path
from typing import List

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sc2deploy import atomic
from sc2deploy.export.layers import GDN1, FactorizedPrior
from sc2deploy.export.tables import compute_tables
from sc2deploy.export.tail import Bottleneck
from sc2deploy.orchestrate.demo_data import CLASSES, EVAL_SEED, TRAIN_SEED, render
from sc2deploy.specs import IMAGENET_MEAN, IMAGENET_STD

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "sc2deploy" / "data"
PREFIX = "backbone.bottleneck_layer."
STEM = 16  # teacher stem width
PLANES = (16, 16, 32, 32)  # bottleneck widths of layer1-4 (outputs 4x), one block each
SIZE, CROP = 256, 224  # rendered images; the head's centre crop
# The teacher's split-point feature is averaged over SMOOTH x SMOOTH positions (5 x 4 = 20 px,
# one to two texture periods): the rectified filter responses become local texture energy,
# the task's evidence, without the texture's phase, which costs bits and says nothing of
# the class. The teacher is trained with it; the baselines are classified through it too.
SMOOTH = 5


# ---------------------------------------------------------------------- data
def rendered(seed: int, per_class: int):
    """(uint8 images [n, 3, 256, 256], labels [n]) of the generated set ``seed``."""
    xs, ys = [], []
    for k in range(len(CLASSES)):
        for i in range(per_class):
            xs.append(render(k, seed, i, SIZE).transpose(2, 0, 1))
            ys.append(k)
    return torch.from_numpy(np.stack(xs)), torch.tensor(ys)


def normalize(u8: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (u8.float() / 255 - mean) / std


def crops(u8: torch.Tensor, size: int, gen: torch.Generator = None) -> torch.Tensor:
    """Centre crops (``gen`` None) or random crops of ``size`` px, normalized."""
    n, _, h, w = u8.shape
    if gen is None:
        top = (h - size) // 2
        return normalize(u8[:, :, top:top + size, top:top + size])
    tops = torch.randint(h - size + 1, (n,), generator=gen)
    lefts = torch.randint(w - size + 1, (n,), generator=gen)
    return normalize(torch.stack([u8[i, :, t:t + size, s:s + size]
                                  for i, (t, s) in enumerate(zip(tops.tolist(),
                                                                 lefts.tolist()))]))


# ---------------------------------------------------------------------- models
def stage(inplanes: int, planes: int, stride: int) -> nn.Sequential:
    """One torchvision Bottleneck (v1.5) with a projecting downsample."""
    width = 4 * planes
    down = nn.Sequential(nn.Conv2d(inplanes, width, 1, stride, bias=False), nn.BatchNorm2d(width))
    return nn.Sequential(Bottleneck(
        nn.Conv2d(inplanes, planes, 1, bias=False), nn.BatchNorm2d(planes),
        nn.Conv2d(planes, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes),
        nn.Conv2d(planes, width, 1, bias=False), nn.BatchNorm2d(width), down))


class Teacher(nn.Module):
    """A small ResNet with torchvision's names; split after layer1 (stride 4)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, STEM, 5, 2, 2, bias=False)
        self.bn1 = nn.BatchNorm2d(STEM)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = STEM
        for i, planes in enumerate(PLANES):
            setattr(self, f"layer{i + 1}", stage(inplanes, planes, 1 if i == 0 else 2))
            inplanes = 4 * planes
        self.fc = nn.Linear(inplanes, len(CLASSES))
        self.smooth = nn.AvgPool2d(SMOOTH, 1, SMOOTH // 2, count_include_pad=False)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """What the student's head and decoder replace: stem + layer1 (+ local averaging)."""
        return self.smooth(self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x))))))

    def rest(self, z: torch.Tensor) -> torch.Tensor:
        z = self.layer4(self.layer3(self.layer2(z)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(z, 1), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rest(self.head(x))


class Student(nn.Module):
    """The entropic student: encoder ─ factorized prior ─ decoder, then the teacher's rest."""

    def __init__(self, teacher: Teacher, channels: int, decoder_width: int):
        super().__init__()
        n, d, out = channels, decoder_width, 4 * PLANES[0]
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 4 * n, 5, 2, 2, bias=False), GDN1(4 * n),
            nn.Conv2d(4 * n, 2 * n, 5, 2, 2, bias=False), GDN1(2 * n),
            nn.Conv2d(2 * n, n, 4, 2, 1, bias=False))  # stride 8 (module docstring)
        self.entropy_bottleneck = FactorizedPrior(n)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(n, d, 4, 2, 1, bias=False), GDN1(d, inverse=True),
            nn.Conv2d(d, d, 2, 1, 0), GDN1(d, inverse=True),  # biases, as the entropic
            nn.Conv2d(d, out, 2, 1, 1))  # student's: without them it is an odd function
        rest = Teacher()
        rest.load_state_dict(teacher.state_dict())
        self.layer2, self.layer3, self.layer4, self.fc = (rest.layer2, rest.layer3, rest.layer4,
                                                          rest.fc)

    def tail(self, y_hat: torch.Tensor) -> torch.Tensor:
        z = self.layer4(self.layer3(self.layer2(self.decoder(y_hat))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(z, 1), 1))

    def bits(self, y_hat: torch.Tensor) -> torch.Tensor:
        """Bits of ``y_hat`` under the prior (CompressAI's likelihood lower bound 1e-9)."""
        c = y_hat.shape[1]
        lik, _, _ = self.entropy_bottleneck.likelihood(y_hat.transpose(0, 1).reshape(c, 1, -1))
        return -torch.log2(lik.clamp_min(1e-9)).sum()


# ---------------------------------------------------------------------- training
def log(msg: str) -> None:
    print(msg, flush=True)


def batches(n: int, batch: int, gen: torch.Generator):
    order = torch.randperm(n, generator=gen)
    for i in range(0, n - batch + 1, batch):
        yield order[i:i + batch]


def _with_loss(logits: torch.Tensor, labels: torch.Tensor):
    return logits, F.cross_entropy(logits, labels)


def fit(name: str, epochs: int, y, opt, sched, args, gen, step) -> None:
    """``epochs`` of shuffled batches; ``step(indices)`` gives (logits, loss); logs train top-1."""
    start = time.time()
    for epoch in range(epochs):
        correct = seen = 0
        for idx in batches(len(y), args.batch, gen):
            logits, loss = step(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            correct += int((logits.argmax(1) == y[idx]).sum())
            seen += len(idx)
        log(f"{name} epoch {epoch + 1}/{epochs}  train top-1 "
            f"{100 * correct / max(seen, 1):.1f} %  {time.time() - start:.0f} s")


def train_teacher(x, y, args, gen) -> Teacher:
    teacher = Teacher()
    opt = torch.optim.AdamW(teacher.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = args.teacher_epochs * (len(x) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=max(steps, 1))
    teacher.train()
    fit("teacher", args.teacher_epochs, y, opt, sched, args, gen,
        lambda idx: _with_loss(teacher(crops(x[idx], CROP, gen)), y[idx]))
    return teacher.eval()


def stage1(student: Student, teacher: Teacher, x, beta: float, steps: int, args, gen) -> None:
    """Generalized head network distillation under the rate term, then the quantiles settle.

    The decoder's output goes on through the teacher's own (frozen) layer2-4; the distortion
    is the mean over layer1-4 of each output's MSE to the teacher's, relative to the
    variance of the teacher's, so the errors that matter to the task weigh in."""
    eb = student.entropy_bottleneck
    main = [*student.encoder.parameters(), *student.decoder.parameters(),
            *(p for n, p in eb.named_parameters() if n != "quantiles")]
    opt = torch.optim.Adam(main, lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    aux = torch.optim.Adam([eb.quantiles], lr=1e-2)
    teacher.requires_grad_(False)
    with torch.no_grad():  # relative distortion: β means the same for any teacher
        scales = [float(f.var()) for f in stages(teacher, teacher.head(crops(x[:64], args.crop)))]
    start = time.time()
    for step in range(1, steps + 1):
        idx = torch.randint(len(x), (args.batch,), generator=gen)
        inputs = crops(x[idx], args.crop, gen)
        with torch.no_grad():
            targets = stages(teacher, teacher.head(inputs))
        y = student.encoder(inputs)
        y_hat = y + torch.empty_like(y).uniform_(-0.5, 0.5, generator=gen)
        outputs = stages(teacher, student.decoder(y_hat))
        distortion = sum(F.mse_loss(o, t) / s for o, t, s in zip(outputs, targets, scales)) / 4
        bpp = student.bits(y_hat) / (len(idx) * args.crop * args.crop)
        loss = distortion + beta * bpp
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        aux.zero_grad()
        eb.aux_loss().backward()
        aux.step()
        if step % 100 == 0 or step == steps:
            log(f"  stage 1 β={beta:g} step {step}/{steps}  distortion {distortion.item():.4f}  "
                f"bpp {bpp.item():.4f}  {time.time() - start:.0f} s")
    for _ in range(args.aux_steps):
        aux.zero_grad()
        eb.aux_loss().backward()
        aux.step()


def stages(teacher: Teacher, z: torch.Tensor) -> List[torch.Tensor]:
    """The split-point feature ``z`` and what the teacher's layer2-4 make of it."""
    out = [z]
    for layer in (teacher.layer2, teacher.layer3, teacher.layer4):
        out.append(layer(out[-1]))
    return out


def symbols_of(student: Student, x, medians: torch.Tensor) -> torch.Tensor:
    """round(y - median) of the centre crops, int16 (what the device sends)."""
    out = []
    with torch.no_grad():
        for i in range(0, len(x), 64):
            out.append(torch.round(student.encoder(crops(x[i:i + 64], CROP)) - medians)
                       .to(torch.int16))
    return torch.cat(out)


def logits_of(model, inputs, batch: int = 64) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(inputs[i:i + batch]) for i in range(0, len(inputs), batch)])


def views(student: Student, teacher: Teacher, x, medians, count: int, gen, centre_soft):
    """Stage 2's inputs: the symbols of ``count`` crops of each image (the centre crop, then
    random ones) and the teacher's logits on the same crops: [count, n, ...] each.
    ``centre_soft``: the teacher's logits on the centre crops, the same for every β."""
    symbols, soft = [], [centre_soft]
    with torch.no_grad():
        for view in range(count):
            crop_gen = None if view == 0 else gen
            sym, logits = [], []
            for i in range(0, len(x), 64):
                inputs = crops(x[i:i + 64], CROP, crop_gen)
                sym.append(torch.round(student.encoder(inputs) - medians).to(torch.int16))
                if view:
                    logits.append(teacher(inputs))
            symbols.append(torch.cat(sym))
            if view:
                soft.append(torch.cat(logits))
    return torch.stack(symbols), torch.stack(soft)


def stage2(student: Student, symbols, medians, y, soft, args, gen) -> None:
    """Encoder and prior frozen: decoder + layer2-4 + fc, CE + KD on the rounded symbols;
    each step takes one of the views (``symbols``/``soft``: [views, n, ...]) per image."""
    parts = [student.decoder, student.layer2, student.layer3, student.layer4, student.fc]
    params = [p for m in parts for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=args.lr)
    steps = args.stage2_epochs * (len(y) // args.batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    t, alpha = args.kd_temperature, args.kd_alpha
    for m in parts:
        m.train()

    def step(idx):
        view = (torch.randint(len(symbols), (len(idx),), generator=gen) if len(symbols) > 1
                else torch.zeros(len(idx), dtype=torch.long))
        logits = student.tail(symbols[view, idx].float() + medians)
        kd = F.kl_div(F.log_softmax(logits / t, 1), F.log_softmax(soft[view, idx] / t, 1),
                      reduction="batchmean", log_target=True) * t * t
        return logits, (1 - alpha) * F.cross_entropy(logits, y[idx]) + alpha * kd

    fit("  stage 2", args.stage2_epochs, y, opt, sched, args, gen, step)
    student.eval()


# ---------------------------------------------------------------------- saving
def torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def student_state(student: Student, tables) -> dict:
    """The WACV'22 key names, CompressAI's tables as after ``update()``."""
    state = {}
    for part in ("encoder", "entropy_bottleneck", "decoder"):
        for k, v in getattr(student, part).state_dict().items():
            state[f"{PREFIX}{part}.{k}"] = v.detach().clone()
    eb = f"{PREFIX}entropy_bottleneck."
    state[eb + "_offset"] = torch.from_numpy(tables.offsets.copy())
    state[eb + "_quantized_cdf"] = torch.from_numpy(tables.quantized_cdf.copy())
    state[eb + "_cdf_length"] = torch.from_numpy(tables.cdf_lengths.copy())
    state[eb + "likelihood_lower_bound.bound"] = torch.tensor([1e-9])
    for layer in ("layer2", "layer3", "layer4"):
        for k, v in getattr(student, layer).state_dict().items():
            state[f"backbone.{layer}.{k}"] = v.detach().clone()
    for k, v in student.fc.state_dict().items():
        state[f"fc.{k}"] = v.detach().clone()
    return state


def save_teacher_onnx(teacher: Teacher, path: Path) -> None:
    import onnx

    buf = io.BytesIO()
    torch.onnx.export(teacher, torch.zeros(1, 3, CROP, CROP), buf, input_names=["image"],
                      output_names=["logits"], opset_version=17, dynamo=False)
    model = onnx.load_from_string(buf.getvalue())
    meta = {"sc2deploy_part": "teacher", "classes": ",".join(CLASSES),
            "input": "the head's preprocessed input (256 px, 224 crop, ImageNet mean/std)",
            "architecture": "ResNet-style: conv5/2, maxpool, layer1, avgpool5/1 (the split "
            "point), layer2-4 (one Bottleneck each), fc"}
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model, full_check=True)
    atomic.write_bytes(path, model.SerializeToString())


def point_name(beta: float) -> str:
    return f"demo-beta{beta:g}"


# ---------------------------------------------------------------------- main
def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--betas", type=float, nargs="*", default=[0.1, 0.3, 1.0, 3.0],
                   help="the ladder's β values, trained in increasing order")
    p.add_argument("--channels", type=int, default=12, help="latent channels N (encoder 4N, 2N)")
    p.add_argument("--decoder-width", type=int, default=32)
    p.add_argument("--train-per-class", type=int, default=200)
    p.add_argument("--eval-per-class", type=int, default=30)
    p.add_argument("--teacher-epochs", type=int, default=10)
    p.add_argument("--stage1-steps", type=int, default=3000, help="first (smallest) β")
    p.add_argument("--stage1-warm-steps", type=int, default=800, help="each later β")
    p.add_argument("--stage2-epochs", type=int, default=10)
    p.add_argument("--stage2-views", type=int, default=1, help="crops per image in stage 2: "
                   "the centre crop, then random ones")
    p.add_argument("--aux-steps", type=int, default=1000)
    p.add_argument("--crop", type=int, default=112, help="stage 1 crop size (pixels)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--kd-alpha", type=float, default=0.5)
    p.add_argument("--kd-temperature", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=DATA, help="writes demo_teacher.onnx and "
                   "demo_ladder/ here")
    p.add_argument("--work", type=Path, default=ROOT / "build" / "demo-ladder")
    p.add_argument("--resume", action="store_true",
                   help="reuse work/teacher.pt and skip ladder points already written")
    return p.parse_args(argv)


def teacher_for(args, x, y, gen):
    saved = args.work / "teacher.pt"
    if args.resume and saved.is_file():
        teacher = Teacher()
        teacher.load_state_dict(torch.load(saved, weights_only=True))
        log(f"teacher loaded from {saved}")
        if not (args.out / "demo_teacher.onnx").is_file():
            save_teacher_onnx(teacher.eval(), args.out / "demo_teacher.onnx")
        return teacher.eval(), 0.0
    start = time.time()
    teacher = train_teacher(x, y, args, gen)
    atomic.write_bytes(saved, torch_bytes(teacher.state_dict()))
    save_teacher_onnx(teacher, args.out / "demo_teacher.onnx")
    return teacher, time.time() - start


def main(argv=None):
    args = parse(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    ladder_dir = args.out / "demo_ladder"
    for folder in (args.work, ladder_dir):
        atomic.ensure_writable(folder, "an output folder")
    start = time.time()
    x, y = rendered(TRAIN_SEED, args.train_per_class)
    x_eval, y_eval = rendered(EVAL_SEED, args.eval_per_class)
    log(f"rendered {len(x)} train + {len(x_eval)} held-out images  {time.time() - start:.0f} s")

    teacher, teacher_s = teacher_for(args, x, y, gen)
    with torch.no_grad():
        t_top1 = 100 * float((logits_of(teacher, crops(x_eval, CROP)).argmax(1) == y_eval)
                             .float().mean())
    log(f"teacher held-out top-1 {t_top1:.1f} %  ({teacher_s:.0f} s)")
    summary = {"teacher": {"top1": t_top1, "train_s": round(teacher_s)}, "points": []}

    with torch.no_grad():  # stage 2's first view, the same for every β
        centre_soft = torch.cat([teacher(crops(x[i:i + 64], CROP)) for i in range(0, len(x), 64)])
    student = Student(teacher, args.channels, args.decoder_width)
    frozen_rest = {k: v.clone() for k, v in student.state_dict().items()
                   if k.startswith(("layer", "fc"))}
    for i, beta in enumerate(sorted(args.betas)):
        path = ladder_dir / f"{point_name(beta)}.pt"
        if args.resume and path.is_file():
            student.load_state_dict(_student_keys(torch.load(path, weights_only=False)["model"]),
                                    strict=False)
            log(f"{path.name} exists; warm start from it")
            continue
        t0 = time.time()
        student.load_state_dict(frozen_rest, strict=False)  # stage 2 starts from the teacher
        student.train()
        stage1(student, teacher, x, beta, args.stage1_steps if i == 0 else
               args.stage1_warm_steps, args, gen)
        student.eval()
        tables = compute_tables(student.entropy_bottleneck)
        medians = torch.from_numpy(tables.medians).view(1, -1, 1, 1)
        sym, soft = views(student, teacher, x, medians, args.stage2_views, gen, centre_soft)
        stage2(student, sym, medians, y, soft, args, gen)
        sym_eval = symbols_of(student, x_eval, medians)
        top1 = 100 * float((logits_of(student.tail, sym_eval.float() + medians).argmax(1)
                            == y_eval).float().mean())
        est_bytes = tables.bits_per_symbol(sym_eval.numpy()) * sym_eval[0].numel() / 8
        seconds = time.time() - t0
        recipe = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                  if k not in ("out", "work", "resume", "betas")}
        ckpt = {"model": student_state(student, tables), "optimizer": None,
                "lr_scheduler": None, "best_value": top1,
                "args": argparse.Namespace(**recipe, beta=beta, student=point_name(beta),
                                           teacher="demo_teacher.onnx")}
        atomic.write_bytes(path, torch_bytes(ckpt))
        log(f"β={beta:g}: held-out top-1 {top1:.1f} % (teacher {t_top1:.1f} %), "
            f"~{est_bytes:.0f} bytes/image by the prior, {seconds:.0f} s → {path}")
        summary["points"].append({"beta": beta, "top1": top1, "bytes_estimate": round(est_bytes),
                                  "train_s": round(seconds), "file": path.name})
    atomic.write_text(args.work / "summary.json", json.dumps(summary, indent=1))
    log(f"total {time.time() - start:.0f} s")


def _student_keys(state: dict) -> dict:
    """The saved checkpoint's names back to the Student's (for --resume)."""
    out = {}
    for k, v in state.items():
        if k.startswith(PREFIX) and not k.split(".")[-1].startswith(("_", "likelihood")):
            name = k[len(PREFIX):]
            if "likelihood_lower_bound" not in name:
                out[name] = v
        elif k.startswith("backbone.layer"):
            out[k[len("backbone."):]] = v
        elif k.startswith("fc."):
            out[k] = v
    return out


if __name__ == "__main__":
    main()
