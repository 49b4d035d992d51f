"""Give the bundled demo student a task: train its tail and a teacher on generated labeled data.

Dev-only (``make demo-task``, a few minutes on 2 CPU cores). The head in
sc2deploy/data/demo_student.pt (encoder, entropy bottleneck, tables) stays bit for bit
as it is; this script adds the server side and writes a teacher::

    generated image (sc2deploy.orchestrate.demo_data, seed 1) ─ preprocess (256 → 224 crop)
      ├─ frozen head ─ symbols ─ + median ─ decoder (conv/IGDN) ─ layer2-4 ─ fc ─ 10 logits
      └─ teacher: conv4x4/4, 3 × conv3x3/2 (BN, ReLU) ─ avgpool ─ fc ─ 10 logits (demo_teacher.onnx)

The tail is trained on the head's quantized symbols exactly as the server receives them
and saved in the WACV'22 layout (``backbone.bottleneck_layer.decoder.*``,
``backbone.layer2.*`` .. ``layer4``, ``fc.*``), so ``sc2deploy export demo`` exports it with
the generic tail builder. The teacher (the model that sees JPEG/WebP-compressed inputs in
the baselines) is shipped as ONNX so that ``evaluate`` needs no torch. Accuracies are
printed on a held-out generated set (seed 2).
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sc2deploy.export.checkpoint import bottleneck_state, load_state_dict
from sc2deploy.export.heads import build_head
from sc2deploy.export.layers import GDN1
from sc2deploy.export.tail import Bottleneck
from sc2deploy.orchestrate.demo_data import CLASSES, EVAL_SEED, TRAIN_SEED, render
from sc2deploy.preprocess import Preprocessing
from sc2deploy.specs import IMAGENET_MEAN, IMAGENET_STD, get_spec

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "sc2deploy" / "data"
HEAD_PREFIX = "backbone.bottleneck_layer."
HEAD_PARTS = (HEAD_PREFIX + "encoder.", HEAD_PREFIX + "entropy_bottleneck.")
DECODER = (16, 16, 32)  # decoder.0/2/4 output channels
PLANES = (16, 16, 32)  # layer2-4 bottleneck widths (outputs 4x), one block each


def images(seed: int, per_class: int):
    """(normalized inputs float32 [n,3,224,224], labels) of the generated set."""
    from PIL import Image

    spec = get_spec("demo")
    pre = Preprocessing(spec.resize, (spec.crop, spec.crop), IMAGENET_MEAN, IMAGENET_STD)
    xs, ys = [], []
    for k in range(len(CLASSES)):
        for i in range(per_class):
            xs.append(pre.transform(Image.fromarray(render(k, seed, i)))[0])
            ys.append(k)
    return torch.from_numpy(np.stack(xs)), torch.tensor(ys)


def head_symbols(head: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([head(x[i:i + 32]) for i in range(0, len(x), 32)])


def make_tail(channels: int) -> nn.ModuleDict:
    c1, c2, c3 = DECODER
    decoder = nn.Sequential(
        nn.Conv2d(channels, c1, 2, 1, 1, bias=False), GDN1(c1, inverse=True),
        nn.Conv2d(c1, c2, 2, 1, 0, bias=False), GDN1(c2, inverse=True),
        nn.Conv2d(c2, c3, 2, 1, 1, bias=False))
    parts, inplanes = {"decoder": decoder}, c3
    for name, p in zip(("layer2", "layer3", "layer4"), PLANES):
        down = nn.Sequential(nn.Conv2d(inplanes, 4 * p, 1, 2, bias=False), nn.BatchNorm2d(4 * p))
        parts[name] = nn.Sequential(Bottleneck(
            nn.Conv2d(inplanes, p, 1, bias=False), nn.BatchNorm2d(p),
            nn.Conv2d(p, p, 3, 2, 1, bias=False), nn.BatchNorm2d(p),
            nn.Conv2d(p, 4 * p, 1, bias=False), nn.BatchNorm2d(4 * p), down))
        inplanes = 4 * p
    parts["fc"] = nn.Linear(inplanes, len(CLASSES))
    return nn.ModuleDict(parts)


def tail_logits(tail: nn.ModuleDict, y_hat: torch.Tensor) -> torch.Tensor:
    z = tail["layer4"](tail["layer3"](tail["layer2"](tail["decoder"](y_hat))))
    return tail["fc"](torch.flatten(F.adaptive_avg_pool2d(z, 1), 1))


class Teacher(nn.Module):
    """A small classifier on the head's own input (the preprocessed 224 px image)."""

    def __init__(self, widths=(16, 32, 64, 64)):
        super().__init__()
        layers, c = [], 3
        for i, w in enumerate(widths):  # stride 4 (4x4 patches), then 3x3 stride 2
            conv = nn.Conv2d(c, w, 4, 4, bias=False) if i == 0 else nn.Conv2d(c, w, 3, 2, 1,
                                                                                bias=False)
            layers += [conv, nn.BatchNorm2d(w), nn.ReLU()]
            c = w
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c, len(CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


def fit(name, model, forward, inputs, labels, args, gen):
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps = args.epochs * (len(inputs) // args.batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    start, step = time.time(), 0
    model.train()
    for epoch in range(args.epochs):
        order = torch.randperm(len(inputs), generator=gen)
        total, correct = 0.0, 0
        for i in range(0, len(order) - args.batch + 1, args.batch):
            idx = order[i:i + args.batch]
            logits = forward(inputs[idx])
            loss = F.cross_entropy(logits, labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            total += loss.item() * len(idx)
            correct += int((logits.argmax(1) == labels[idx]).sum())
        n = (len(order) // args.batch) * args.batch
        print(f"{name} epoch {epoch + 1}/{args.epochs}  loss {total / n:.3f}  "
              f"train acc {100 * correct / n:.1f} %  {time.time() - start:4.0f} s", flush=True)
    model.eval()


def accuracy(forward, inputs, labels) -> float:
    with torch.no_grad():
        pred = torch.cat([forward(inputs[i:i + 64]).argmax(1) for i in range(0, len(inputs), 64)])
    return 100.0 * float((pred == labels).float().mean())


def save_student(raw, tail: nn.ModuleDict, path: Path, args, ckpt) -> None:
    state = {k: v for k, v in raw.items() if k.startswith(HEAD_PARTS)}  # the head, untouched
    for k, v in tail["decoder"].state_dict().items():
        state[f"{HEAD_PREFIX}decoder.{k}"] = v.detach().clone()
    for layer in ("layer2", "layer3", "layer4"):
        for k, v in tail[layer].state_dict().items():
            state[f"backbone.{layer}.{k}"] = v.detach().clone()
    for k, v in tail["fc"].state_dict().items():
        state[f"fc.{k}"] = v.detach().clone()
    recipe = {k: v for k, v in vars(args).items() if k not in ("student", "teacher_out")}
    ckpt = dict(ckpt, model=state, task={"classes": list(CLASSES), "recipe": recipe,
                                         "tail": {"decoder": list(DECODER),
                                                  "planes": list(PLANES)}})
    torch.save(ckpt, path)


def save_teacher(teacher: Teacher, path: Path) -> None:
    import onnx

    torch.onnx.export(teacher, torch.zeros(1, 3, 224, 224), str(path), input_names=["image"],
                      output_names=["logits"], opset_version=17, dynamo=False)
    model = onnx.load(str(path))
    meta = {"sc2deploy_part": "teacher", "classes": ",".join(CLASSES),
            "input": "the head's preprocessed input (256 px, 224 crop, ImageNet mean/std)"}
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-per-class", type=int, default=150)
    parser.add_argument("--eval-per-class", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--student", type=Path, default=DATA / "demo_student.pt")
    parser.add_argument("--teacher-out", type=Path, default=DATA / "demo_teacher.onnx")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    start = time.time()

    with torch.serialization.safe_globals([argparse.Namespace]):
        ckpt = torch.load(args.student, map_location="cpu", weights_only=True)
    raw = load_state_dict(args.student)
    state, prefix = bottleneck_state(raw, "fp")
    assert prefix == HEAD_PREFIX, prefix
    head = build_head(get_spec("demo"), state)
    head.module.eval()
    medians = torch.from_numpy(head.prior.medians).float().view(1, -1, 1, 1)

    x_train, y_train = images(TRAIN_SEED, args.train_per_class)
    x_eval, y_eval = images(EVAL_SEED, args.eval_per_class)
    print(f"generated {len(x_train)} train + {len(x_eval)} eval images "
          f"{time.time() - start:.0f} s", flush=True)
    s_train = head_symbols(head.module, x_train)
    s_eval = head_symbols(head.module, x_eval)
    print(f"head symbols {list(s_train.shape[1:])} {time.time() - start:.0f} s", flush=True)

    tail = make_tail(s_train.shape[1])
    tail_fwd = lambda s: tail_logits(tail, s + medians)  # noqa: E731 - the server's input
    fit("tail", tail, tail_fwd, s_train, y_train, args, gen)
    tail_acc = accuracy(tail_fwd, s_eval, y_eval)

    teacher = Teacher()
    fit("teacher", teacher, teacher, x_train, y_train, args, gen)
    teacher_acc = accuracy(teacher, x_eval, y_eval)

    save_student(raw, tail, args.student, args, ckpt)
    save_teacher(teacher, args.teacher_out)
    print(f"held-out top-1 ({len(x_eval)} images): split student {tail_acc:.1f} %, "
          f"teacher {teacher_acc:.1f} %")
    for p in (args.student, args.teacher_out):
        print(f"wrote {p} ({p.stat().st_size / 1e3:.0f} kB)")
    print(f"total {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
