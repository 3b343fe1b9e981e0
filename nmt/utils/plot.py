"""Attention heatmaps as PNG files (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import torch


def plot_attention(
    attn: torch.Tensor | None, src_pieces: list[str], tgt_pieces: list[str], path: Path
) -> None:
    """Draw a (T, S) attention matrix with target pieces as rows and source pieces as columns.

    An empty translation (no attention) gives no file.
    """
    if attn is None or not tgt_pieces:
        return
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    weights = attn[: len(tgt_pieces), : len(src_pieces)].float().numpy()
    height, width = weights.shape
    fig, ax = plt.subplots(figsize=(max(4.0, 0.35 * width + 2), max(3.0, 0.35 * height + 2)))
    ax.imshow(weights, cmap="Greys", aspect="auto", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(width), src_pieces, rotation=90, fontsize=8)
    ax.set_yticks(range(height), tgt_pieces, fontsize=8)
    ax.set_xlabel("source")
    ax.set_ylabel("target")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
