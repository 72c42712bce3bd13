"""Training of the learned codec: rate–distortion loss, aux loss, random region masking.

Loss per sample with a continuous rate level k drawn uniformly from [LEVEL_MIN, 5] (Cui 2021):
    L = λ_k · 255² · MSE(x, x̂) + bpp(ŷ kept) + bpp(ẑ)
and the entropy bottleneck's aux loss on its own optimizer (CompressAI convention).
Region masking (DISCOVER, second stage): for a share of samples, 0–50 % of latent
positions (in 2×2 blocks) are replaced by the hyperprior mean μ and cost no rate, so
g_s learns to decode partial latents.

Checkpoints are safetensors only: model, optimiser moments and RNG states as tensors, step,
config and loss history as JSON in the file's metadata. A run resumes from
``OUT/checkpoint.safetensors`` with the same data order and noise (weights then agree with an
uninterrupted run up to float rounding).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from taskcodec.codec.learned.model import LAMBDAS, LEVEL_MIN, GainedMeanScaleHyperprior, lambda_for
from taskcodec.errors import TaskcodecError

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    data: str
    out: str
    steps: int = 14000
    batch: int = 8
    crop: int = 128
    lr: float = 5e-4
    decay_from: float = 0.8  # lr × 0.1 for the last 20 % of steps
    mask_prob: float = 0.3
    mask_max: float = 0.5
    N: int = 64
    M: int = 192
    seed: int = 0
    checkpoint_every: int = 250
    log_every: int = 50
    threads: int = 0  # 0: torch's default
    init: str = ""  # weights to start from (same N; same M = fine-tune, larger M = widen)


def load_crops_source(data: str | Path, min_side: int) -> list[np.ndarray]:
    """Every image listed in DATA/manifest.tsv (or every image in DATA), as uint8 HWC."""
    root = Path(data)
    manifest = root / "manifest.tsv"
    if manifest.exists():
        lines = manifest.read_text().splitlines()[1:]
        paths = [root / line.split("\t")[0] for line in lines if line.strip()]
    else:
        paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"})
    images = []
    for p in paths:
        try:
            with Image.open(p) as im:
                arr = np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as exc:
            log.warning("skipping %s: %s", p, exc)
            continue
        if min(arr.shape[:2]) >= min_side:
            images.append(arr)
    if not images:
        raise TaskcodecError(f"{root}: no training image of at least {min_side}px per side")
    return images


class CropSampler:
    """Random crops with random horizontal flips, from a seeded generator."""

    def __init__(self, images: list[np.ndarray], crop: int, rng: np.random.Generator):
        self.images, self.crop, self.rng = images, crop, rng

    def batch(self, n: int) -> torch.Tensor:
        out = np.empty((n, self.crop, self.crop, 3), np.uint8)
        for i in range(n):
            img = self.images[self.rng.integers(len(self.images))]
            y = self.rng.integers(img.shape[0] - self.crop + 1)
            x = self.rng.integers(img.shape[1] - self.crop + 1)
            patch = img[y:y + self.crop, x:x + self.crop]
            out[i] = patch[:, ::-1] if self.rng.random() < 0.5 else patch
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255)


def random_keep(n: int, h: int, w: int, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """(n,1,h,w) bool: True = transmitted. Masked samples drop 0–mask_max of 2×2 blocks."""
    bh, bw = (h + 1) // 2, (w + 1) // 2
    frac = torch.rand(n, 1, 1, 1, generator=gen) * cfg.mask_max
    frac = torch.where(torch.rand(n, 1, 1, 1, generator=gen) < cfg.mask_prob, frac, torch.zeros_like(frac))
    keep = torch.rand(n, 1, bh, bw, generator=gen) >= frac
    return keep.repeat_interleave(2, 2).repeat_interleave(2, 3)[:, :, :h, :w]


def rd_loss(model, x: torch.Tensor, level: torch.Tensor, keep: torch.Tensor | None) -> dict:
    out = model(x, level, keep)
    n, _, h, w = x.shape
    pixels = h * w
    bits_y = -torch.log2(out["likelihoods"]["y"]).sum(dim=(1, 2, 3))
    bits_z = -torch.log2(out["likelihoods"]["z"]).sum(dim=(1, 2, 3))
    bpp = (bits_y + bits_z) / pixels
    mse = ((out["x_hat"] - x) ** 2).mean(dim=(1, 2, 3))
    lam = lambda_for(level)
    loss = (lam * 255 ** 2 * mse + bpp).mean()
    return {"loss": loss, "bpp": bpp.mean(), "mse": mse.mean(),
            "psnr": (10 * torch.log10(1 / mse.clamp_min(1e-10))).mean()}


GAIN_LR_SCALE = 10.0  # the gain vectors are a few scale parameters (a learned quantisation matrix): faster


def _optimizers(model, lr: float):
    named = [(n, p) for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    # the module's own parameter (log_gain) comes first, so [gains, main] keeps the flat order
    # that checkpoints index optimiser state by
    main = {"params": [p for n, p in named if n != "log_gain"], "lr_scale": 1.0}
    gains = {"params": [p for n, p in named if n == "log_gain"], "lr_scale": GAIN_LR_SCALE}
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    assert named[0][0] == "log_gain"
    return torch.optim.Adam([gains, main], lr=lr), torch.optim.Adam(aux, lr=1e-3)


def _flatten_opt(prefix: str, opt) -> dict[str, torch.Tensor]:
    flat = {}
    for idx, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            flat[f"{prefix}.{idx}.{key}"] = torch.as_tensor(value).detach().cpu().clone()
    return flat


def _restore_opt(prefix: str, opt, tensors: dict[str, torch.Tensor]) -> None:
    sd = opt.state_dict()
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    sd["state"] = state
    opt.load_state_dict(sd)


def save_checkpoint(path: Path, model, opt, aux_opt, step: int, cfg: TrainConfig, np_rng, gen, history) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors |= _flatten_opt("opt", opt) | _flatten_opt("aux", aux_opt)
    tensors["rng.torch"] = gen.get_state()
    tensors["rng.torch_global"] = torch.get_rng_state()
    meta = {"step": step, "config": asdict(cfg), "numpy_rng": np_rng.bit_generator.state,
            "python_rng": repr(random.getstate()), "history": history}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"meta": json.dumps(meta)})
    os.replace(tmp, path)


def _start_from(model, cfg: TrainConfig, images: list[np.ndarray], device) -> None:
    """Initialise a new run from ``cfg.init`` (shipped-format weights): copy or widen."""
    from taskcodec.codec.learned.weights import read_weights
    from taskcodec.codec.learned.widen import init_from, latent_spread, set_new_scales

    tensors, meta = read_weights(Path(cfg.init))
    if int(meta["N"]) != cfg.N:
        raise TaskcodecError(f"{cfg.init}: made with N={meta['N']}, not N={cfg.N}")
    tensors = {k: v.to(device) for k, v in tensors.items()}
    init_from(model, tensors, int(meta["M"]))
    if int(meta["M"]) != cfg.M:  # σ of the new channels: their spread on a batch of crops
        probe = CropSampler(images, cfg.crop, np.random.default_rng(cfg.seed + 1)).batch(32).to(device)
        set_new_scales(model, int(meta["M"]), latent_spread(model, probe))
    log.info("initialised from %s (M=%s → M=%d)", cfg.init, meta["M"], cfg.M)


def train(cfg: TrainConfig, progress=None) -> Path:
    """Train (or resume) and return the checkpoint path."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = device.type == "cuda"  # fixed crop shapes: pick the fastest kernels once
    torch.manual_seed(cfg.seed)
    model = GainedMeanScaleHyperprior(cfg.N, cfg.M).to(device)
    opt, aux_opt = _optimizers(model, cfg.lr)
    np_rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    ckpt = out / "checkpoint.safetensors"
    step, history = 0, []
    if ckpt.exists():
        from safetensors import safe_open

        with safe_open(str(ckpt), "pt") as f:
            meta = json.loads(f.metadata()["meta"])
        tensors = load_file(str(ckpt))
        old = meta["config"]
        if (old["N"], old["M"]) != (cfg.N, cfg.M):
            raise TaskcodecError(f"{ckpt}: made with N={old['N']} M={old['M']}, not N={cfg.N} M={cfg.M}")
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        _restore_opt("opt", opt, tensors)
        _restore_opt("aux", aux_opt, tensors)
        gen.set_state(tensors["rng.torch"])
        torch.set_rng_state(tensors["rng.torch_global"])
        np_rng.bit_generator.state = meta["numpy_rng"]
        step, history = meta["step"], meta.get("history", [])
        log.info("resumed %s at step %d", ckpt, step)
    images = load_crops_source(cfg.data, cfg.crop)
    if step == 0 and cfg.init:
        _start_from(model, cfg, images, device)
    sampler = CropSampler(images, cfg.crop, np_rng)
    model.train()
    t0, window = time.time(), []
    while step < cfg.steps:
        lr = cfg.lr * (0.1 if step >= cfg.decay_from * cfg.steps else 1.0)
        for group in opt.param_groups:
            group["lr"] = lr * group["lr_scale"]
        x = sampler.batch(cfg.batch).to(device)
        level = (LEVEL_MIN + torch.rand(cfg.batch, generator=gen) * (len(LAMBDAS) - 1 - LEVEL_MIN)).to(device)
        h, w = cfg.crop // 16, cfg.crop // 16
        keep = random_keep(cfg.batch, h, w, cfg, gen).to(device)
        parts = rd_loss(model, x, level, keep)
        opt.zero_grad()
        parts["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        aux = model.aux_loss()
        aux_opt.zero_grad()
        aux.backward()
        aux_opt.step()
        step += 1
        if not math.isfinite(parts["loss"].item()):
            raise TaskcodecError(f"loss is not finite at step {step}; lower --lr")
        window.append([parts[k].item() for k in ("loss", "bpp", "psnr")] + [aux.item()])
        if step % cfg.log_every == 0 or step == cfg.steps:
            mean = np.mean(window, axis=0).tolist()
            window = []
            row = {"step": step, "loss": mean[0], "bpp": mean[1], "psnr": mean[2], "aux": mean[3],
                   "lr": lr, "elapsed_s": round(time.time() - t0, 1)}
            history.append(row)
            log.info("step %d loss %.4f bpp %.3f psnr %.2f aux %.1f", step, *mean)
            if progress:
                progress(row)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save_checkpoint(ckpt, model, opt, aux_opt, step, cfg, np_rng, gen, history)
    return ckpt
