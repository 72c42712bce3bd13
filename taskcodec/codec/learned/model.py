"""Variable-rate mean-scale hyperprior with region-separable latent streams.

Papers:
  * Ballé et al., "Variational image compression with a scale hyperprior", ICLR 2018.
  * Minnen et al., "Joint autoregressive and hierarchical priors for learned image
    compression", NeurIPS 2018 (the mean-scale hyperprior, without the context model).
  * Cui et al., "Asymmetric gained deep image compression with continuous rate
    adaptation", CVPR 2021 (one model, many rates: a gain vector per rate level).
  * DISCOVER / SDComp: the latent is split into region streams; a region missing from
    the stream is filled with the hyperprior mean.

Dataflow (``k`` = rate level, ``g_k`` = per-channel gain, ``Q`` = rounding)::

    x ──g_a──► y ──h_a──► z ──Q──► ẑ ──[EB: entropy bottleneck]──► side stream (always sent)
                                   │
                                   h_s
                                   ▼
                                 (μ, σ)  one mean and scale per latent element
    y ─► r = (y − μ)·g_k ─► r̂ = Q(r) ─► [GC: Gaussian N(0, σ·g_k)] ─► one stream per region
    ŷ = r̂ / g_k + μ   inside decoded regions,   ŷ = μ   elsewhere
    x̂ = g_s(ŷ)

The entropy parameters of ŷ depend on ẑ only (no spatial context model), so every
latent element can be coded in any stream and decoded without its neighbours: a
region decodes alone, and a decoded region's ŷ is bit-exact to the full decode.
The gain changes the quantisation step per channel and level (step = 1/g_k); ẑ does
not depend on the level, so regions coded at different levels share one side stream.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.layers import GDN
from compressai.models.utils import conv, deconv

# λ of each rate level (MSE on 0-255 scale; CompressAI's mse λ's for qualities 1-6).
LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483)
SCALES_MIN, SCALES_MAX, SCALES_LEVELS = 0.11, 256, 64
GAIN_INIT = (1.5, 8.0)  # fine steps at first, so g_s learns from informative latents; λ then pulls them down


def scale_table() -> Tensor:
    return torch.exp(torch.linspace(math.log(SCALES_MIN), math.log(SCALES_MAX), SCALES_LEVELS))


def round_ste(x: Tensor) -> Tensor:
    """Round in the forward pass, identity gradient in the backward pass."""
    return (torch.round(x) - x).detach() + x


class GainedMeanScaleHyperprior(nn.Module):
    """g_a / g_s / h_a / h_s as in Minnen 2018 (Fig. 2, without the context model)."""

    def __init__(self, N: int = 96, M: int = 128, levels: int = len(LAMBDAS)):
        super().__init__()
        self.N, self.M, self.levels = N, M, levels
        self.g_a = nn.Sequential(
            conv(3, N), GDN(N), conv(N, N), GDN(N), conv(N, N), GDN(N), conv(N, M))
        self.g_s = nn.Sequential(
            deconv(M, N), GDN(N, inverse=True), deconv(N, N), GDN(N, inverse=True),
            deconv(N, N), GDN(N, inverse=True), deconv(N, 3))
        self.h_a = nn.Sequential(
            conv(M, N, stride=1, kernel_size=3), nn.LeakyReLU(inplace=True),
            conv(N, N), nn.LeakyReLU(inplace=True), conv(N, N))
        self.h_s = nn.Sequential(
            deconv(N, M), nn.LeakyReLU(inplace=True),
            deconv(M, M * 3 // 2), nn.LeakyReLU(inplace=True),
            conv(M * 3 // 2, M * 2, stride=1, kernel_size=3))
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional(None)
        # log of the gain g_k per level and channel; level 0 is the coarsest.
        init = torch.linspace(math.log(GAIN_INIT[0]), math.log(GAIN_INIT[1]), levels)
        self.log_gain = nn.Parameter(init[:, None].repeat(1, M).clone())

    # -- rate levels ------------------------------------------------------------
    def gain(self, level: Tensor | float) -> Tensor:
        """g for a (possibly fractional) level: log-linear between neighbours (Cui 2021)."""
        level = torch.as_tensor(level, dtype=torch.float32, device=self.log_gain.device)
        level = level.clamp(0, self.levels - 1)
        lo = level.floor().long().clamp(max=self.levels - 2)
        t = (level - lo.float()).unsqueeze(-1)
        return torch.exp((1 - t) * self.log_gain[lo] + t * self.log_gain[lo + 1])

    def hyper(self, z_hat: Tensor) -> tuple[Tensor, Tensor]:
        scales, means = self.h_s(z_hat).chunk(2, 1)
        return scales, means

    # -- training -----------------------------------------------------------------
    def forward(self, x: Tensor, level: Tensor, keep: Tensor | None = None) -> dict:
        """Noisy-rate forward pass.

        level: (B,) rate level per sample; keep: optional (B,1,h,w) bool mask of latent
        positions that are transmitted — the others are replaced by μ (DISCOVER stage 2)
        and cost no rate.
        """
        y = self.g_a(x)
        z = self.h_a(y)
        z_hat, z_likelihoods = self.entropy_bottleneck(z)
        scales, means = self.hyper(z_hat)
        g = self.gain(level)[:, :, None, None]
        r = (y - means) * g
        _, y_likelihoods = self.gaussian_conditional(r, scales * g)
        y_hat = round_ste(r) / g + means
        if keep is not None:
            y_hat = torch.where(keep, y_hat, means)
            y_likelihoods = torch.where(keep, y_likelihoods, torch.ones_like(y_likelihoods))
        x_hat = self.g_s(y_hat)
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    def aux_loss(self) -> Tensor:
        return self.entropy_bottleneck.loss()

    def update(self, force: bool = True) -> None:
        self.gaussian_conditional.update_scale_table(scale_table(), force=force)
        self.entropy_bottleneck.update(force=force)
