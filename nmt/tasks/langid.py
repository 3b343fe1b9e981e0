"""`langid` task: in which language is each line of a file (a translation, usually)?

Trains the character n-gram identifier of `nmt.langid` on `texts` (one monolingual file per
language; `max_lines` lines spread evenly over each file), identifies every line of `input` and
prints the share of lines in each language. With `expect=LANG` the share of lines in LANG is the
headline (and the return value): e.g. whether a zero-shot pt→es model really writes Spanish.
"""

from __future__ import annotations

import json

from omegaconf import DictConfig

from nmt.data.corpus import read_lines
from nmt.langid import LanguageIdentifier
from nmt.utils.io import atomic_open


def spread(lines: list[str], limit: int) -> list[str]:
    """At most `limit` of `lines`, evenly spaced over the whole file (all of them if fewer)."""
    if limit < 1:
        raise ValueError(f"max_lines must be >= 1, got {limit}")
    step = max(len(lines) / limit, 1.0)
    return [lines[int(i * step)] for i in range(min(limit, len(lines)))]


def langid(cfg: DictConfig) -> float:
    """Print the language shares of `input`; return the share of `expect` (or of the top one)."""
    if not cfg.texts:
        raise ValueError("texts: give one text per language, texts={pt: FILE, es: FILE, ...}")
    if cfg.input is None:
        raise ValueError("input: required (the file whose lines to identify)")
    if cfg.expect is not None and cfg.expect not in cfg.texts:
        raise ValueError(
            f"expect={cfg.expect}: not one of the languages of texts {list(cfg.texts)}"
        )
    texts = {str(lang): spread(read_lines(path), cfg.max_lines) for lang, path in cfg.texts.items()}
    identifier = LanguageIdentifier.train(texts, tuple(cfg.orders), float(cfg.smoothing))
    lines = read_lines(cfg.input, allow_empty=True)
    shares = identifier.shares(lines)
    lead = str(cfg.expect) if cfg.expect is not None else max(shares, key=shares.__getitem__)
    others = ", ".join(f"{lang} {100 * s:.1f} %" for lang, s in shares.items() if lang != lead)
    print(f"{cfg.input}: {lead} {100 * shares[lead]:.1f} % of {len(lines):,} lines ({others})")
    if cfg.output_json is not None:
        with atomic_open(cfg.output_json) as handle:
            json.dump(
                {
                    "input": str(cfg.input),
                    "expect": cfg.expect,
                    "lines": len(lines),
                    "shares": shares,
                },
                handle,
                indent=2,
            )
            handle.write("\n")
    return shares[lead]
