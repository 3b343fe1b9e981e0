"""Multilingual corpora (Johnson et al. 2017): one model, a target-language tag on each source.

Every training direction src -> tgt contributes its pairs with `<2tgt>` prepended to the
source sentence; the directions are concatenated into one pair of text files, so the rest of
the pipeline (SentencePiece, binarization, filtering, batching) is the bilingual one. The tags
are SentencePiece user-defined symbols, so each is one piece. How often each direction is
sampled follows a temperature over the direction sizes, through the weighted sampling of
several corpora (`nmt.data.mixing`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nmt.data.mixing import write_combined


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

    Files are rewritten only when their content changes (`nmt.data.mixing.write_combined`).
    """
    parts = [(*direction.files(split), lang_tag(direction.tgt_lang)) for direction in directions]
    return write_combined(parts, out, max_lines, on_invalid_utf8)
