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

g_a and g_s are Ballé's conv/GDN stacks plus a linear 16×16 block-transform path initialised
as a YCbCr block DCT (``block_dct``), with the stacks' last layers initialised at zero: the
model starts as a transform coder (DCT, learned per-level quantisation steps, hyperprior
entropy model) and training adds what the linear path misses. This is our addition, for
short training on a CPU; the dataflow and the entropy models are Minnen 2018's.

The entropy parameters of ŷ depend on ẑ only (no spatial context model), so every
latent element can be coded in any stream and decoded without its neighbours: a
region decodes alone, and a decoded region's ŷ is bit-exact to the full decode.
The gain changes the quantisation step per channel and level (step = 1/g_k); ẑ does
not depend on the level, so regions coded at different levels share one side stream.

Coding (CompressAI's ``compress``/``decompress``, split the way the region streams need)::

    compress_side(y)            -> ẑ's stream, its shape, (σ, μ)      [EB]
    decompress_side(s, shape)   -> (σ, μ)
    compress_region(y, σ, μ, own, k)       -> the stream of the latent positions ``own``   [GC]
    decompress_region(s, σ, μ, own, k)     -> ŷ at those positions (M × n)
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor, nn

from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.layers import GDN
from compressai.models.utils import conv, deconv

# λ of each rate level (MSE on 0-255 scale; CompressAI's mse λ's for qualities 1-6).
LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483)
# Rate levels are continuous in [LEVEL_MIN, len(LAMBDAS) - 1]; below 0, gains and λ extrapolate
# log-linearly from levels 0 and 1 (λ(-1) ≈ 0.0009), and training samples that range too.
LEVEL_MIN = -1.0
SCALES_MIN, SCALES_MAX, SCALES_LEVELS = 0.11, 256, 64
LINEAR_SCALE = 4.0  # latents of the block-DCT path = 4 × orthonormal DCT coefficients of x − 0.5
GAIN_INIT = (1.5, 8.0)  # fine steps at first, so g_s learns from informative latents; λ then pulls them down


_ONE_THREAD = threading.Lock()


@contextmanager
def one_thread():
    """Run torch on one thread inside the block, so float results that both ends of a stream must share
    do not depend on the thread count. The lock keeps concurrent coders (the bench's worker threads) from
    restoring each other's process-wide thread count."""
    with _ONE_THREAD:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


def scale_table() -> Tensor:
    return torch.exp(torch.linspace(math.log(SCALES_MIN), math.log(SCALES_MAX), SCALES_LEVELS))


def component_split(M: int) -> list[int]:
    """Latent channels per component (Y, Cb, Cr) of the block-DCT layout: 2/3 luma, 1/6 each chroma."""
    return [M - 2 * (M // 6), M // 6, M // 6]


def block_dct(M: int, block: int = 16) -> tuple[Tensor, Tensor]:
    """Analysis and synthesis kernels of a YCbCr block DCT keeping M coefficients per block.

    2/3 of the channels take the lowest-frequency luma coefficients (zigzag order), 1/6 each
    chroma; analysis is the orthonormal DCT of (Y, Cb, Cr) of each 16×16 block, synthesis
    its transpose mapped back to RGB. A JPEG-like transform coder from the first step.
    """
    rgb2ycc = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    ycc2rgb = torch.linalg.inv(rgb2ycc)
    n = torch.arange(block, dtype=torch.float64)
    b = torch.cos(math.pi * (2 * n[None] + 1) * n[:, None] / (2 * block)) * math.sqrt(2 / block)
    b[0] /= math.sqrt(2)
    order = sorted(((u, v) for u in range(block) for v in range(block)), key=lambda t: (t[0] + t[1], t[0]))
    ana = torch.zeros(M, 3, block, block)
    syn = torch.zeros(M, 3, block, block)
    m = 0
    for ch, count in enumerate(component_split(M)):
        for u, v in order[:count]:
            basis = torch.outer(b[u], b[v]).float()
            ana[m] = rgb2ycc[ch][:, None, None] * basis
            syn[m] = ycc2rgb[:, ch][:, None, None] * basis
            m += 1
    return ana * LINEAR_SCALE, syn / LINEAR_SCALE


@torch.no_grad()
def _start_as_transform_coder(block: nn.Module, kernels: Tensor, last: nn.Module) -> None:
    """The linear path starts as the block DCT, the stack's last layer at zero."""
    block.weight.copy_(kernels)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)


class AnalysisTransform(nn.Module):
    """g_a: Ballé's conv/GDN stack plus a linear block-transform path initialised as a block DCT.

    The stack's last layer starts at zero, so training starts from a transform coder
    (DCT + learned quantisation + hyperprior entropy model) and the stack learns what
    the linear path misses.
    """

    def __init__(self, N: int, M: int):
        super().__init__()
        self.layers = nn.Sequential(conv(3, N), GDN(N), conv(N, N), GDN(N), conv(N, N), GDN(N), conv(N, M))
        self.block = nn.Conv2d(3, M, 16, stride=16, bias=False)
        _start_as_transform_coder(self.block, block_dct(M)[0], self.layers[-1])

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x) + self.block(x - 0.5)


class SynthesisTransform(nn.Module):
    """g_s: the inverse GDN stack plus the linear path's transpose (the inverse block DCT)."""

    def __init__(self, N: int, M: int):
        super().__init__()
        self.layers = nn.Sequential(
            deconv(M, N), GDN(N, inverse=True), deconv(N, N), GDN(N, inverse=True),
            deconv(N, N), GDN(N, inverse=True), deconv(N, 3))
        self.block = nn.ConvTranspose2d(M, 3, 16, stride=16, bias=False)
        _start_as_transform_coder(self.block, block_dct(M)[1], self.layers[-1])

    def forward(self, y: Tensor) -> Tensor:
        return self.layers(y) + self.block(y) + 0.5


class FastGaussianConditional(GaussianConditional):
    """CompressAI's GaussianConditional with ``build_indexes`` as one binary search.

    CompressAI compares every scale with each of the 64 table entries in a Python loop
    (about a third of the codec's CPU time here); the index it computes is the number of
    entries below the scale (table[:-1]), which ``torch.searchsorted`` gives in one pass,
    with the same float comparisons, so the indexes are identical.
    """

    def build_indexes(self, scales: Tensor) -> Tensor:
        scales = self.lower_bound_scale(scales)
        table = self.scale_table[:-1].to(scales.dtype).contiguous()
        return torch.searchsorted(table, scales.contiguous(), right=False).int()


def _interp(table: Tensor, level: Tensor) -> Tensor:
    """Rows of ``table`` at fractional ``level``: linear between rows, extrapolated below row 0."""
    lo = level.floor().long().clamp(0, table.shape[0] - 2)
    t = (level - lo.float()).unsqueeze(-1)
    return (1 - t) * table[lo] + t * table[lo + 1]


def lambda_for(level: Tensor) -> Tensor:
    """λ of a fractional level: log-linear in the level, like the gains."""
    log_l = torch.log(torch.tensor(LAMBDAS, device=level.device))[:, None]
    return torch.exp(_interp(log_l, level.clamp(LEVEL_MIN, len(LAMBDAS) - 1)))[..., 0]


def round_ste(x: Tensor) -> Tensor:
    """Round in the forward pass, identity gradient in the backward pass."""
    return (torch.round(x) - x).detach() + x


class GainedMeanScaleHyperprior(nn.Module):
    """g_a / g_s / h_a / h_s as in Minnen 2018 (Fig. 2, without the context model)."""

    def __init__(self, N: int = 96, M: int = 128, levels: int = len(LAMBDAS)):
        super().__init__()
        self.N, self.M, self.levels = N, M, levels
        self.g_a = AnalysisTransform(N, M)
        self.g_s = SynthesisTransform(N, M)
        self.h_a = nn.Sequential(
            conv(M, N, stride=1, kernel_size=3), nn.LeakyReLU(inplace=True),
            conv(N, N), nn.LeakyReLU(inplace=True), conv(N, N))
        self.h_s = nn.Sequential(
            deconv(N, M), nn.LeakyReLU(inplace=True),
            deconv(M, M * 3 // 2), nn.LeakyReLU(inplace=True),
            conv(M * 3 // 2, M * 2, stride=1, kernel_size=3))
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = FastGaussianConditional(None)
        # log of the gain g_k per level and channel; level 0 is the coarsest.
        init = torch.linspace(math.log(GAIN_INIT[0]), math.log(GAIN_INIT[1]), levels)
        self.log_gain = nn.Parameter(init[:, None].repeat(1, M).clone())

    # -- rate levels ------------------------------------------------------------
    def gain(self, level: Tensor | float) -> Tensor:
        """g for a (possibly fractional) level: log-linear between neighbours (Cui 2021), and
        extrapolated from levels 0 and 1 below level 0."""
        level = torch.as_tensor(level, dtype=torch.float32, device=self.log_gain.device)
        return torch.exp(_interp(self.log_gain, level.clamp(LEVEL_MIN, self.levels - 1)))

    def hyper(self, z_hat: Tensor) -> tuple[Tensor, Tensor]:
        scales, means = self.h_s(z_hat).chunk(2, 1)
        return scales, means

    # -- coding: one side stream, then one stream per region -----------------------
    def compress_side(self, y: Tensor) -> tuple[bytes, tuple[int, int], Tensor, Tensor]:
        """ẑ = Q(h_a(y)) as the entropy bottleneck's stream, and the (σ, μ) the decoder will get from it."""
        z = self.h_a(y)
        string = self.entropy_bottleneck.compress(z)[0]
        shape = tuple(z.shape[-2:])
        return string, shape, *self.decompress_side(string, shape)

    def decompress_side(self, string: bytes, shape: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """(σ, μ) from ẑ's stream: h_s on one thread at both ends, so its float results (which pick
        the coder's tables) agree on any machine and thread setting (MKL's kernels: ``floatpath``)."""
        z_hat = self.entropy_bottleneck.decompress([string], shape)
        with one_thread():
            return self.hyper(z_hat)

    def compress_region(self, y: Tensor, scales: Tensor, means: Tensor, own: np.ndarray, level: float) -> bytes:
        """r̂ = Q((y − μ)·g_k) of the latent positions ``own`` (all M channels), coded with N(0, σ·g_k)."""
        ys, xs = np.nonzero(own)
        g = self.gain(level)[:, None]
        r = (y[0][:, ys, xs] - means[0][:, ys, xs]) * g
        idx = self.gaussian_conditional.build_indexes(scales[0][:, ys, xs] * g)
        return self.gaussian_conditional.compress(r[None], idx[None])[0]

    def decompress_region(self, string: bytes, scales: Tensor, means: Tensor, own: np.ndarray,
                          level: float) -> Tensor:
        """ŷ = r̂ / g_k + μ at the positions ``own`` (M × n, in ``np.nonzero`` order); raises on a damaged stream."""
        ys, xs = np.nonzero(own)
        g = self.gain(level)[:, None]
        idx = self.gaussian_conditional.build_indexes(scales[0][:, ys, xs] * g)
        return self.gaussian_conditional.decompress([string], idx[None])[0] / g + means[0][:, ys, xs]

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
