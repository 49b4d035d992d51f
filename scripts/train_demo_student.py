"""Train the bundled demo student (entropic-student head) and write sc2deploy/data/demo_student.pt.

Dev-only, reproducible with one command (``make demo-student``), ~10 minutes on
2 CPU cores. No ImageNet teacher can be downloaded here, so the student learns
to reproduce a *fixed random-feature teacher* (conv7/2 → ReLU → maxpool →
conv1x1 → ReLU, 256×H/4×W/4, the shape of ResNet-50's layer1) from the
bundled sample images, under a rate penalty. The result is a real
rate-distortion trained head with a realistic latent, not an accurate classifier.

Only the head (encoder + entropy bottleneck, with CompressAI's tables filled
as after ``update()``) is saved, in torchdistill's layout, to stay < 2 MB.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sc2deploy.export.layers import GDN1, FactorizedPrior
from sc2deploy.export.tables import compute_tables
from sc2deploy.preprocess import sample_images
from sc2deploy.specs import IMAGENET_MEAN, IMAGENET_STD

ROOT = Path(__file__).resolve().parent.parent
N = 24  # latent channels


def student():
    encoder = nn.Sequential(
        nn.Conv2d(3, 4 * N, 5, 2, 2, bias=False), GDN1(4 * N),
        nn.Conv2d(4 * N, 2 * N, 5, 2, 2, bias=False), GDN1(2 * N),
        nn.Conv2d(2 * N, N, 2, 1, 0, bias=False))
    decoder = nn.Sequential(
        nn.Conv2d(N, 512, 2, 1, 1, bias=False), GDN1(512, inverse=True),
        nn.Conv2d(512, 256, 2, 1, 0, bias=False), GDN1(256, inverse=True),
        nn.Conv2d(256, 256, 2, 1, 1, bias=False))
    return encoder, FactorizedPrior(N), decoder


def teacher():
    net = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
                        nn.Conv2d(64, 256, 1), nn.ReLU())
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


def load_pool(size: int):
    """All sample images as normalized float tensors (shorter side resized to 320)."""
    from PIL import Image

    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    pool = []
    for path in sample_images():
        with Image.open(path) as img:
            img = img.convert("RGB")
            scale = 320 / min(img.size)
            img = img.resize((round(img.size[0] * scale), round(img.size[1] * scale)),
                             Image.BILINEAR)
            arr = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)
        pool.append((arr - mean) / std)
    return pool


def random_batch(pool, batch: int, size: int, gen: torch.Generator):
    crops = []
    for _ in range(batch):
        img = pool[int(torch.randint(len(pool), (1,), generator=gen))]
        scale = float(torch.empty(1).uniform_(0.4, 1.0, generator=gen))
        side = max(size, int(min(img.shape[1:]) * scale))
        top = int(torch.randint(img.shape[1] - side + 1, (1,), generator=gen))
        left = int(torch.randint(img.shape[2] - side + 1, (1,), generator=gen))
        crop = img[:, top:top + side, left:left + side][None]
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False)
        if torch.rand(1, generator=gen) < 0.5:
            crop = crop.flip(-1)
        crops.append(crop)
    return torch.cat(crops)


def rate_bits(prior: FactorizedPrior, y_hat: torch.Tensor) -> torch.Tensor:
    values = y_hat.permute(1, 0, 2, 3).reshape(N, 1, -1)
    lik, _, _ = prior.likelihood(values)
    return -torch.log2(lik.clamp_min(1e-9)).sum()


def train(args):
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    encoder, prior, decoder = student()
    teach = teacher()
    pool = load_pool(args.size)
    with torch.no_grad():
        probe = teach(random_batch(pool, 16, args.size, gen))
        t_mean = probe.mean((0, 2, 3), keepdim=True)
        t_std = probe.std((0, 2, 3), keepdim=True).clamp_min(1e-3)
    main = [*encoder.parameters(), *decoder.parameters(),
            *(p for n, p in prior.named_parameters() if n != "quantiles")]
    opt = torch.optim.Adam(main, lr=args.lr)
    aux_opt = torch.optim.Adam([prior.quantiles], lr=1e-2)
    start = time.time()
    for it in range(1, args.steps + 1):
        x = random_batch(pool, args.batch, args.size, gen)
        with torch.no_grad():
            target = (teach(x) - t_mean) / t_std
        y = encoder(x)
        y_hat = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        distortion = F.mse_loss(decoder(y_hat), target)
        bits = rate_bits(prior, y_hat) / y.numel()
        loss = distortion + args.beta * bits
        opt.zero_grad()
        loss.backward()
        opt.step()
        aux_opt.zero_grad()
        prior.aux_loss().backward()
        aux_opt.step()
        if it % 25 == 0 or it == args.steps:
            print(f"step {it:4d}/{args.steps}  mse {distortion.item():.4f}  "
                  f"bits/sym {bits.item():.3f}  {time.time() - start:5.0f} s", flush=True)
    for _ in range(args.aux_steps):  # settle the quantiles before the tables are built
        aux_opt.zero_grad()
        prior.aux_loss().backward()
        aux_opt.step()
    return encoder, prior


def evaluate(encoder, prior, tables):
    from sc2deploy.preprocess import Preprocessing

    pre = Preprocessing(256, (224, 224), IMAGENET_MEAN, IMAGENET_STD)
    with torch.no_grad():
        y = torch.cat([encoder(torch.from_numpy(pre(p))) for p in sample_images()])
        sym = torch.round(y - prior.medians().view(1, -1, 1, 1)).numpy()
    per_channel = tables.bits_per_channel(sym)
    return float(per_channel.mean()), per_channel


def save(encoder, prior, tables, path: Path, args):
    prefix = "backbone.bottleneck_layer."
    state = {f"{prefix}encoder.{k}": v.detach().clone() for k, v in encoder.state_dict().items()}
    for k, v in prior.state_dict().items():
        state[f"{prefix}entropy_bottleneck.{k}"] = v.detach().clone()
    eb = f"{prefix}entropy_bottleneck."
    state[eb + "_offset"] = torch.from_numpy(tables.offsets.copy())
    state[eb + "_quantized_cdf"] = torch.from_numpy(tables.quantized_cdf.copy())
    state[eb + "_cdf_length"] = torch.from_numpy(tables.cdf_lengths.copy())
    state[eb + "likelihood_lower_bound.bound"] = torch.tensor([1e-9])
    recipe = {k: v for k, v in vars(args).items() if k != "out"}  # no machine paths
    ckpt = {"model": state, "args": argparse.Namespace(**recipe, student="demo")}
    torch.save(ckpt, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--aux-steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--beta", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "sc2deploy" / "data" / "demo_student.pt")
    args = parser.parse_args()
    encoder, prior = train(args)
    tables = compute_tables(prior)
    bps, per_channel = evaluate(encoder, prior, tables)
    print(f"bits/symbol on the samples at 224 px: {bps:.3f}; per channel min "
          f"{min(per_channel):.3f} max {max(per_channel):.3f}")
    if bps < 0.5 or min(per_channel) < 0.05:
        raise SystemExit("latent is not realistic (need >= 0.5 bits/symbol, no dead channel)")
    save(encoder, prior, tables, args.out, args)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
