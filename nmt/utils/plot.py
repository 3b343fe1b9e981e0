"""Attention heatmaps and training curves as PNG files (matplotlib, headless)."""

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
    _save(fig, plt, path)


def plot_curves(
    series: dict[str, tuple[list[float], list[float]]], path: Path, title: str = ""
) -> None:
    """Draw validation BLEU (y) against training minutes (x), one line per labelled run."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.5))
    for label, (minutes, bleu) in series.items():
        ax.plot(minutes, bleu, marker="o", markersize=3, label=label)
    ax.set_xlabel("training minutes (wall clock, validation included)")
    ax.set_ylabel("valid BLEU (greedy)")
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    _save(fig, plt, path)


def _save(fig: object, plt: object, path: Path) -> None:
    """Write the figure atomically (temporary file, then rename) and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
