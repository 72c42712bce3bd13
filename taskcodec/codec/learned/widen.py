"""Start training from existing weights: same shape (fine-tuning) or more latent channels (widening).

The latent channels of g_a/g_s's linear path are block-DCT coefficients in a fixed layout
(``block_dct``: lowest-frequency luma first, then Cb, then Cr, each in zigzag order). A model
with more channels keeps the same coefficients as a prefix of each component and adds higher
frequencies after them, so a trained M-channel model maps into an M′ > M model exactly:

    old channel (component c, rank j)  →  new channel (component c, rank j)

Everything trained is copied to its mapped place. What is new starts so that the widened
model decodes as the old one did, plus the new coefficients through the linear path:

* weights *reading* a new latent channel (g_s's first layer, h_a's first layer, h_s's
  hidden layers) are zero, so the trained stacks see what they saw before;
* weights *writing* a new latent channel (g_a's last layer) are zero, as in a fresh model;
* the hyperprior's outputs for a new channel: μ = 0, σ = the channel's measured spread
  (``set_new_scales``); their weights start at zero;
* gains of a new channel: those of the highest-frequency old channel of its component.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from taskcodec.codec.learned.model import GainedMeanScaleHyperprior, component_split
from taskcodec.errors import TaskcodecError


def channel_map(M_old: int, M_new: int) -> Tensor:
    """Index of each old latent channel in the wider model."""
    idx, o, n = [], 0, 0
    for c_old, c_new in zip(component_split(M_old), component_split(M_new)):
        if c_new < c_old:
            raise TaskcodecError(f"cannot map M={M_old} into M={M_new}: a component would shrink")
        idx += [n + j for j in range(c_old)]
        o, n = o + c_old, n + c_new
    return torch.tensor(idx)


def _gain_init(log_gain_old: Tensor, M_new: int) -> Tensor:
    levels, M_old = log_gain_old.shape
    out = torch.empty(levels, M_new)
    o = n = 0
    for c_old, c_new in zip(component_split(M_old), component_split(M_new)):
        out[:, n:n + c_new] = log_gain_old[:, o + c_old - 1:o + c_old]  # highest old frequency
        out[:, n:n + c_old] = log_gain_old[:, o:o + c_old]
        o, n = o + c_old, n + c_new
    return out


# tensors whose new entries all start at zero (see the module docstring)
SILENT = {"g_a.layers.6.weight", "g_a.layers.6.bias", "g_s.layers.0.weight", "h_a.0.weight",
          "h_s.4.weight", "h_s.4.bias"}


def _mapped(cmap: Tensor, M: int) -> Tensor:
    mask = torch.zeros(M, dtype=torch.bool)
    mask[cmap] = True
    return mask


def init_from(model: GainedMeanScaleHyperprior, tensors: dict[str, Tensor], old_M: int,
              scale: Tensor | None = None) -> None:
    """Load ``tensors`` (weights of a model with ``old_M`` latent channels) into ``model``.

    Same M: a plain copy (fine-tuning). Larger M: widening as described in the module
    docstring; ``scale`` (M_new,) is the initial σ of each channel (only the new ones are used;
    ``set_new_scales`` sets them later, e.g. from ``latent_spread`` of the widened model).
    """
    M = model.M
    own = model.state_dict()
    if old_M == M:
        model.load_state_dict({k: v for k, v in tensors.items() if k in own}, strict=False)
        return
    if old_M > M:
        raise TaskcodecError(f"cannot start an M={M} model from M={old_M} weights (only widening)")
    cmap = channel_map(old_M, M)
    hmap = torch.arange(old_M * 3 // 2)  # h_s's 3M/2 hidden channels: a plain prefix
    smap = torch.cat([cmap, cmap + M])  # h_s's output: scales, then means
    # key → how each dim of the old tensor maps (None: same size); new entries read below
    rules = {
        "log_gain": (None, cmap),
        "g_a.layers.6.weight": (cmap, None, None, None), "g_a.layers.6.bias": (cmap,),
        "g_s.layers.0.weight": (cmap, None, None, None),
        # the linear path: trained kernels to their channels, the fresh block DCT for new ones
        "g_a.block.weight": (cmap, None, None, None), "g_s.block.weight": (cmap, None, None, None),
        "h_a.0.weight": (None, cmap, None, None),
        "h_s.0.weight": (None, cmap, None, None), "h_s.0.bias": (cmap,),
        "h_s.2.weight": (cmap, hmap, None, None), "h_s.2.bias": (hmap,),
        "h_s.4.weight": (smap, hmap, None, None), "h_s.4.bias": (smap,),
    }
    new_state = {}
    for key, value in own.items():
        if key not in tensors:
            continue  # derived buffers (coder tables), rebuilt by update()
        old = tensors[key]
        if key not in rules:
            if old.shape != value.shape:
                raise TaskcodecError(f"{key}: shape {tuple(old.shape)} does not map to {tuple(value.shape)}")
            new_state[key] = old
            continue
        target = value.clone()
        if key in SILENT:
            target.zero_()
        elif key == "h_s.2.weight":
            target[~_mapped(cmap, M)] = 0  # (in, out, …): new latent-side inputs start silent
        if key == "log_gain":
            target = _gain_init(old, M)
        index = torch.meshgrid(*[torch.arange(n) if m is None else m for n, m in zip(old.shape, rules[key])],
                               indexing="ij")
        target[index] = old
        new_state[key] = target
    model.load_state_dict(new_state, strict=False)
    if scale is not None:
        set_new_scales(model, old_M, scale)


@torch.no_grad()
def set_new_scales(model: GainedMeanScaleHyperprior, old_M: int, scale: Tensor) -> None:
    """σ of the channels a widened model added (h_s's bias for them; their weights are zero)."""
    fresh = ~_mapped(channel_map(old_M, model.M), model.M)
    model.h_s[-1].bias[:model.M][fresh] = scale[fresh].to(model.h_s[-1].bias)


def latent_spread(model: GainedMeanScaleHyperprior, x: Tensor) -> Tensor:
    """Per-channel RMS of g_a(x) over a batch: an initial σ for channels the hyperprior never saw."""
    with torch.no_grad():
        y = model.g_a(x)
    return y.pow(2).mean(dim=(0, 2, 3)).sqrt().clamp_min(math.sqrt(1e-4))
