"""Multilingual corpora (Johnson et al. 2017): one model, a target-language tag on each source.

Every training direction src -> tgt contributes its pairs with `<2tgt>` prepended to the
source sentence; the directions are concatenated into one pair of text files, so the rest of
the pipeline (SentencePiece, binarization, filtering, batching) is the bilingual one. The tags
are SentencePiece user-defined symbols, so each is one piece. How often each direction is
sampled follows a temperature over the direction sizes (`resample_counts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nmt.data.corpus import check_line_counts, read_lines
from nmt.utils.io import atomic_write_lines


def lang_tag(lang: str) -> str:
    """The source-side token that asks for target language `lang`, e.g. `<2es>`."""
    return f"<2{lang}>"


def tag_line(line: str, lang: str) -> str:
    """A source sentence as the model sees it when asked for `lang`."""
    return f"{lang_tag(lang)} {line}"


@dataclass(frozen=True)
class Direction:
    """One training direction; `dir` holds {split}.{src_lang} and {split}.{tgt_lang}."""

    src_lang: str
    tgt_lang: str
    dir: Path

    @property
    def name(self) -> str:
        return f"{self.src_lang}-{self.tgt_lang}"

    def files(self, split: str) -> tuple[Path, Path]:
        return self.dir / f"{split}.{self.src_lang}", self.dir / f"{split}.{self.tgt_lang}"


def build_split(
    directions: Sequence[Direction],
    split: str,
    out: tuple[Path, Path],
    max_lines: int | None = None,
    on_invalid_utf8: str = "error",
) -> list[int]:
    """Write every direction's pairs of `split`, tagged, in order, to the `out` files.

    Args:
        directions: the directions, in the order their lines are concatenated.
        split: "train", "valid" or "test".
        out: the combined (source, target) files.
        max_lines: keep at most this many pairs of each direction (the first ones).
        on_invalid_utf8: "error" or "replace", as `nmt.data.corpus.read_lines`.

    Returns:
        Pairs contributed by each direction (the line ranges of the combined files).

    Files are rewritten (atomically) only when their content changes, so a second process
    building the same corpus, or a rerun, leaves them and the binarization cache untouched.
    """
    src_lines: list[str] = []
    tgt_lines: list[str] = []
    sizes = []
    for direction in directions:
        src_path, tgt_path = direction.files(split)
        src, tgt = (read_lines(p, on_invalid_utf8=on_invalid_utf8) for p in (src_path, tgt_path))
        check_line_counts(src_path, len(src), tgt_path, len(tgt))
        src, tgt = src[:max_lines], tgt[:max_lines]
        src_lines += [tag_line(line, direction.tgt_lang) for line in src]
        tgt_lines += tgt
        sizes.append(len(src))
    for path, lines in zip(out, (src_lines, tgt_lines), strict=True):
        _write_if_changed(Path(path), lines)
    return sizes


def _write_if_changed(path: Path, lines: list[str]) -> None:
    content = "".join(line + "\n" for line in lines)
    if path.is_file() and path.read_text(encoding="utf-8") == content:
        return
    atomic_write_lines(path, lines)


def resample_counts(sizes: Sequence[int], temperature: float) -> list[int]:
    """Examples to draw from each direction per epoch under temperature sampling.

    Direction k is sampled with probability q_k ∝ (n_k / N)^(1/T) (Arivazhagan et al. 2019):
    T = 1 keeps the natural proportions, larger T flattens them towards uniform so small
    directions are not drowned. The epoch keeps N = Σ n_k examples in total.

    Args:
        sizes: (n_1, ..., n_K) pairs available per direction.
        temperature: T > 0 (T < 1 sharpens towards the largest direction).

    Returns:
        round(N * q_k) for each direction (0 for an empty direction).
    """
    if temperature <= 0:
        raise ValueError(f"data.temperature must be positive, got {temperature}")
    n = np.asarray(sizes, dtype=np.float64)
    total = n.sum()
    if total == 0:
        return [0] * len(sizes)
    weights = np.where(n > 0, (n / total) ** (1.0 / temperature), 0.0)
    return [int(round(x)) for x in total * weights / weights.sum()]


def resample_indices(
    groups: np.ndarray, counts: Sequence[int], rng: np.random.Generator
) -> np.ndarray:
    """Positions drawing `counts[k]` examples from group k: whole copies, then a random rest.

    Args:
        groups: (N,) group (direction) of each example.
        counts: examples wanted from each group.
        rng: source of the partial copy.

    Returns:
        (Σ counts,) positions into `groups`, grouped by group (the batch sampler shuffles).
    """
    chosen = []
    for k, count in enumerate(counts):
        members = np.flatnonzero(groups == k)
        if len(members) == 0:
            continue
        copies, rest = divmod(count, len(members))
        chosen += [members] * copies
        chosen.append(np.sort(rng.choice(members, size=rest, replace=False)))
    return np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
