"""Typed settings of the training data (the `data` config group), checked in one place.

`DataConfig` mirrors the `data:` node key for key and is its Hydra schema; the
`TranslationDataModule` takes it whole. Nested nodes arrive as plain dicts from a resolved
config (or from Python callers) and are converted here, unknown keys named.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nmt.data.corpus import ON_INVALID_UTF8

RECIPES = ("bible",)
_FILE_KEYS = ("train_src", "train_tgt", "valid_src", "valid_tgt")


@dataclass
class SpmConfig:
    """SentencePiece training settings (`data.spm`); `vocab_size` is required."""

    vocab_size: int
    joint: bool = True  # one model on both sides, or one per side
    model_type: str = "unigram"  # unigram | bpe
    character_coverage: float = 1.0
    input_sentence_size: int = 2_000_000  # sentences sampled to train on large corpora
    user_defined_symbols: list[str] = field(default_factory=list)  # e.g. language tags <2en>

    def __post_init__(self) -> None:
        self.user_defined_symbols = [str(s) for s in self.user_defined_symbols]

    def model_settings(self) -> dict[str, Any]:
        """The settings that name and train one SentencePiece model (all but `joint`)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "joint"}


@dataclass
class ShortlistConfig:
    """Decoding shortlist (`data.shortlist`, `nmt.data.shortlist`): every key is required.

    For each source piece the `per_source` target pieces with the highest Dice co-occurrence,
    plus the `frequent` most frequent target pieces, counted over the first `max_pairs`
    filtered training pairs.
    """

    per_source: int | None = None
    frequent: int | None = None
    max_pairs: int | None = None

    def __post_init__(self) -> None:
        minimum = {"per_source": 1, "frequent": 0, "max_pairs": 1}
        for key, low in minimum.items():
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"data.shortlist.{key} must be an integer >= {low}, got {value!r}")


@dataclass
class BibleConfig:
    """Bible translation codes of the recipe (`data.bible`); null: the language's default."""

    src: str | None = None
    tgt: str | None = None
    codes: dict[str, str] = field(default_factory=dict)  # per language, for directions


@dataclass
class DirectionConfig:
    """One direction of a multilingual corpus; without `dir`, the recipe prepares the pair."""

    src_lang: str
    tgt_lang: str
    dir: str | None = None


@dataclass
class CorpusConfig:
    """One training corpus of a mixture (`data.corpora[i]`, `nmt.data.mixing`).

    `weight` is the corpus's share of every epoch: corpus i contributes
    round(N * weight_i / sum of weights) pairs per epoch, N being the training pairs of all
    corpora after filtering. `name` (default `corpus<i>`) labels its counts and its
    validation BLEU; `valid_src`/`valid_tgt` (both or neither) give it a valid set of its own.
    """

    src: str
    tgt: str
    weight: float = 1.0
    name: str | None = None
    valid_src: str | None = None
    valid_tgt: str | None = None

    @property
    def has_valid(self) -> bool:
        return self.valid_src is not None


_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _corpus(entry: Any, index: int) -> CorpusConfig:
    """`data.corpora[index]` as a checked CorpusConfig (ValueError naming the key)."""
    key = f"data.corpora[{index}]"
    if not isinstance(entry, Mapping | CorpusConfig):
        raise ValueError(f"{key}: give src, tgt and weight (got {entry!r})")
    corpus = entry if isinstance(entry, CorpusConfig) else _nested(CorpusConfig, entry, key)
    paths = {}
    for side in ("src", "tgt", "valid_src", "valid_tgt"):
        value = getattr(corpus, side)
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if (value is not None or side in ("src", "tgt")) and not (value and isinstance(value, str)):
            raise ValueError(f"{key}.{side} must be a file path, got {value!r}")
        paths[side] = value
    corpus = dataclasses.replace(corpus, **paths)
    weight = corpus.weight
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight < math.inf:
        raise ValueError(f"{key}.weight must be a positive number, got {weight!r}")
    if (corpus.valid_src is None) != (corpus.valid_tgt is None):
        raise ValueError(f"{key}: give both valid_src and valid_tgt, or neither")
    name = f"corpus{index}" if corpus.name is None else corpus.name
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{key}.name must be letters, digits, '_', '.' or '-', got {name!r}")
    return dataclasses.replace(corpus, weight=float(weight), name=name)


@dataclass
class DataConfig:
    """The `data` node: files, languages, recipe, SentencePiece, filters, batching, shortlist.

    Training pairs longer than `max_len` pieces (either side) or with a length ratio above
    `max_len_ratio` are removed and counted (null: no limit). `batch_tokens` is the token
    budget per batch counted as padded size (max of src/tgt). `on_invalid_utf8` is the policy
    for undecodable bytes in the text files: "error" (stop, naming file and line) or
    "replace" (U+FFFD, counted; SentencePiece and the arrays then read a cleaned copy).
    `work_dir` receives the SentencePiece model(s) and binarized arrays (content-hashed).

    Multilingual (Johnson et al. 2017): `directions` lists the pairs trained together, each
    source tagged <2tgt_lang>; direction k gets the share q_k ~ n_k^(1/temperature) of every
    epoch (`nmt.data.mixing`).

    Several corpora: `corpora` replaces `train_src`/`train_tgt` (then null), each corpus with
    a weight (its share of every epoch, see `CorpusConfig`); when corpora carry their own
    valid sets, those are validated one by one and together, and `valid_src`/`valid_tgt`
    are null.
    """

    train_src: str | None
    train_tgt: str | None
    valid_src: str | None
    valid_tgt: str | None
    work_dir: str
    spm: SpmConfig
    name: str = "text"
    dir: str | None = None
    src_lang: str = "src"
    tgt_lang: str = "tgt"
    test_src: str | None = None
    test_tgt: str | None = None
    recipe: str | None = None  # prepares missing files: bible, or null (they must exist)
    bible: BibleConfig = field(default_factory=BibleConfig)
    directions: list[DirectionConfig] | None = None
    # Untyped for the schema: __post_init__ makes each entry a CorpusConfig, so that an error
    # names the entry's index (the schema's own errors lose it inside a list).
    corpora: list[Any] | None = None
    temperature: float = 1.0
    valid_lines_per_direction: int | None = None  # cap on each direction's valid pairs
    on_invalid_utf8: str = "error"
    max_len: int | None = 100
    max_len_ratio: float | None = 3.0
    batch_tokens: int = 4096
    valid_batch_tokens: int = 8192
    num_workers: int = 0
    shortlist: ShortlistConfig | None = None  # null: checkpoints carry no shortlist

    def __post_init__(self) -> None:
        self.spm = _nested(SpmConfig, self.spm, "data.spm")
        self.bible = _nested(BibleConfig, self.bible, "data.bible")
        if self.shortlist is not None:
            self.shortlist = _nested(ShortlistConfig, self.shortlist, "data.shortlist")
        if self.directions is not None:
            self.directions = [_direction(entry, i) for i, entry in enumerate(self.directions)]
        if self.corpora is not None:
            self.corpora = [_corpus(entry, i) for i, entry in enumerate(self.corpora)]
        self._check_files()
        if self.recipe is not None and self.recipe not in RECIPES:
            raise ValueError(f"data.recipe must be bible or null, got {self.recipe!r}")
        if self.on_invalid_utf8 not in ON_INVALID_UTF8:
            raise ValueError(
                f"data.on_invalid_utf8 must be one of {', '.join(ON_INVALID_UTF8)}, "
                f"got {self.on_invalid_utf8!r}"
            )

    def _check_files(self) -> None:
        """Training files come from train_src/train_tgt or from corpora; valid likewise."""
        given = {key: getattr(self, key) is not None for key in _FILE_KEYS}
        corpora = self.corpora
        if corpora is not None:
            if not corpora:
                raise ValueError("data.corpora is empty (list at least one corpus, or null)")
            if self.directions:
                raise ValueError("data.corpora: not with data.directions (one or the other)")
            names = [c.name for c in corpora]
            for i, name in enumerate(names):
                if name in names[:i]:
                    raise ValueError(f"data.corpora[{i}].name: {name!r} is used twice")
        own_valid = corpora is not None and any(c.has_valid for c in corpora)
        needed = {
            "train_src": corpora is None,
            "train_tgt": corpora is None,
            "valid_src": not own_valid,
            "valid_tgt": not own_valid,
        }
        for key, want in needed.items():
            if want and not given[key]:
                where = "data.corpora" if key.startswith("train") else "data.corpora[i].valid_*"
                raise ValueError(f"data.{key} is required (or give the files in {where})")
            if not want and given[key]:
                where = "data.corpora" if key.startswith("train") else "data.corpora[i].valid_*"
                raise ValueError(f"data.{key}: the files come from {where}; set it to null")

    @property
    def tgt_langs(self) -> list[str]:
        """The target languages of a multilingual corpus, sorted (empty for one pair)."""
        return sorted({d.tgt_lang for d in self.directions or []})

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DataConfig:
        """Build from a plain (nested) dict, rejecting unknown keys with their name."""
        return _nested(cls, values, "data")


def _nested(cls: type, value: Any, key: str) -> Any:
    """`value` as a `cls` instance: a dict is converted, naming an unknown or missing key."""
    if not isinstance(value, Mapping):
        return value
    fields = dataclasses.fields(cls)
    known = [f.name for f in fields]
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise ValueError(f"{key}.{unknown[0]}: unknown key (known: {', '.join(known)})")
    no_default = dataclasses.MISSING
    for f in fields:
        if f.default is no_default and f.default_factory is no_default and f.name not in value:
            raise ValueError(f"{key}.{f.name} is required")
    return cls(**value)


def _direction(entry: Any, index: int) -> DirectionConfig:
    """`data.directions[index]` as a DirectionConfig."""
    if isinstance(entry, DirectionConfig):
        return entry
    if (
        not isinstance(entry, Mapping)
        or set(entry) - {"src_lang", "tgt_lang", "dir"}
        or not entry.get("src_lang")
        or not entry.get("tgt_lang")
    ):
        raise ValueError(
            f"data.directions[{index}]: give src_lang, tgt_lang and optionally dir (got {entry!r})"
        )
    return DirectionConfig(str(entry["src_lang"]), str(entry["tgt_lang"]), entry.get("dir"))
