"""Weight initialisation."""

from __future__ import annotations

import torch
from torch import nn

from nmt.model.attention import BahdanauAttention


def init_uniform_(module: nn.Module, init_range: float) -> None:
    """Draw every parameter from U(-init_range, init_range), in place.

    GNMT (Wu et al. 2016, sec. 8.1) uses 0.04 and NVIDIA's GNMT v2 uses 0.1. Parameters whose
    initial value is part of their definition are then restored: the attention's normalisation
    scale g = 1/sqrt(A) and bias b = 0, the padding rows of embeddings (zero, never updated) and
    layer norms (gain 1, bias 0).
    `init_range == 0` keeps PyTorch's default initialisation instead (a zero network would never
    break symmetry).

    Args:
        module: Any module, usually a whole `Seq2Seq`.
        init_range: Half-width of the uniform distribution (`model.init_range`, >= 0).
    """
    if init_range == 0:
        return
    with torch.no_grad():
        for param in module.parameters():
            param.uniform_(-init_range, init_range)
        for sub in module.modules():
            if isinstance(sub, BahdanauAttention):
                sub.reset_normalization()
            elif isinstance(sub, nn.Embedding) and sub.padding_idx is not None:
                sub.weight[sub.padding_idx].zero_()
            elif isinstance(sub, nn.LayerNorm):
                sub.reset_parameters()  # gain 1, bias 0
