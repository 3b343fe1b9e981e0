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
from pathlib import Path
from typing import Any

from nmt.data.corpus import ON_INVALID_UTF8
from nmt.data.reader import TextSide, tsv_sides

RECIPES = ("bible",)
# Each split's files: (source key, target key, TSV key), as in DataConfig / CorpusConfig.
_SPLIT_KEYS = {
    "train": ("train_src", "train_tgt", "train_tsv"),
    "valid": ("valid_src", "valid_tgt", "valid_tsv"),
}
_CORPUS_KEYS = {"train": ("src", "tgt", "tsv"), "valid": ("valid_src", "valid_tgt", "valid_tsv")}


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
class CleanConfig:
    """Redundant training pairs removed and counted (`data.clean`, `nmt.data.clean`).

    `duplicates`: a pair whose source and target token ids both equal those of an earlier
    pair goes (the first occurrence stays). `copies`: a pair whose target equals its source
    (the same ids with a joint SentencePiece model, the same decoded text with two models).
    Both are off by default, as in fairseq, Marian and OpenNMT-py: the data trains as given.
    """

    duplicates: bool = False
    copies: bool = False

    def __post_init__(self) -> None:
        for key in ("duplicates", "copies"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(
                    f"data.clean.{key} must be true or false, got {getattr(self, key)!r}"
                )


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
    corpora after filtering. Its pairs are `src` + `tgt`, or the two columns of the TSV file
    `tsv` (source TAB target). `name` (default `corpus<i>`) labels its counts and its
    validation BLEU; `valid_src` + `valid_tgt`, or `valid_tsv`, give it a valid set of its own.
    """

    src: str | None = None
    tgt: str | None = None
    weight: float = 1.0
    name: str | None = None
    valid_src: str | None = None
    valid_tgt: str | None = None
    tsv: str | None = None
    valid_tsv: str | None = None

    @property
    def has_valid(self) -> bool:
        return self.valid_src is not None or self.valid_tsv is not None

    def sides(self, split: str) -> tuple[TextSide, TextSide]:
        """The (source, target) sides of `split` ("train" or "valid")."""
        return _sides(self, _CORPUS_KEYS[split])


_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _corpus(entry: Any, index: int) -> CorpusConfig:
    """`data.corpora[index]` as a checked CorpusConfig (ValueError naming the key)."""
    key = f"data.corpora[{index}]"
    if not isinstance(entry, Mapping | CorpusConfig):
        raise ValueError(f"{key}: give src, tgt (or tsv) and weight (got {entry!r})")
    corpus = entry if isinstance(entry, CorpusConfig) else _nested(CorpusConfig, entry, key)
    paths = {}
    for side in (*_CORPUS_KEYS["train"], *_CORPUS_KEYS["valid"]):
        value = getattr(corpus, side)
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if value is not None and not (value and isinstance(value, str)):
            raise ValueError(f"{key}.{side} must be a file path, got {value!r}")
        paths[side] = value
    corpus = dataclasses.replace(corpus, **paths)
    weight = corpus.weight
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight < math.inf:
        raise ValueError(f"{key}.weight must be a positive number, got {weight!r}")
    _check_form(paths, _CORPUS_KEYS["train"], f"{key}.", required=True)
    _check_form(paths, _CORPUS_KEYS["valid"], f"{key}.", required=False)
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

    One TSV file per split: `train_tsv` (source TAB target) replaces `train_src`/`train_tgt`
    (then null), `valid_tsv` replaces `valid_src`/`valid_tgt`; exactly one form per split.

    Several corpora: `corpora` replaces `train_src`/`train_tgt` (then null), each corpus with
    a weight (its share of every epoch, see `CorpusConfig`); when corpora carry their own
    valid sets, those are validated one by one and together, and `valid_src`/`valid_tgt`
    are null.

    `clean` removes duplicate pairs and copies from the training pairs (`CleanConfig`).
    """

    train_src: str | None
    train_tgt: str | None
    valid_src: str | None
    valid_tgt: str | None
    work_dir: str
    spm: SpmConfig
    train_tsv: str | None = None
    valid_tsv: str | None = None
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
    clean: CleanConfig = field(default_factory=CleanConfig)
    batch_tokens: int = 4096
    valid_batch_tokens: int = 8192
    num_workers: int = 0
    shortlist: ShortlistConfig | None = None  # null: checkpoints carry no shortlist

    def __post_init__(self) -> None:
        self.spm = _nested(SpmConfig, self.spm, "data.spm")
        self.bible = _nested(BibleConfig, self.bible, "data.bible")
        self.clean = _nested(CleanConfig, self.clean, "data.clean")
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
        """Training files come from train_src/train_tgt, train_tsv or corpora; valid likewise."""
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
        elsewhere = {"train": corpora is not None, "valid": own_valid}
        where = {"train": "data.corpora", "valid": "data.corpora[i].valid_*"}
        values = {key: getattr(self, key) for keys in _SPLIT_KEYS.values() for key in keys}
        for split, keys in _SPLIT_KEYS.items():
            if elsewhere[split]:
                for key in keys:
                    if values[key] is not None:
                        raise ValueError(
                            f"data.{key}: the files come from {where[split]}; set it to null"
                        )
            else:
                _check_form(values, keys, "data.", required=True, elsewhere=where[split])

    def sides(self, split: str) -> tuple[TextSide, TextSide]:
        """The (source, target) sides of `split` ("train" or "valid") of a corpus-less config."""
        return _sides(self, _SPLIT_KEYS[split])

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


def _check_form(
    values: Mapping[str, Any],
    keys: tuple[str, str, str],
    prefix: str,
    required: bool,
    elsewhere: str | None = None,
) -> None:
    """Exactly one form of a split's files: source + target keys, or the TSV key.

    Args:
        values: the file keys' values (None: not given).
        keys: (source key, target key, TSV key).
        prefix: what names the keys in messages ("data." or "data.corpora[i].").
        required: whether the split needs files (else neither form is fine too).
        elsewhere: where else the files may come from, for the "required" message.
    """
    src, tgt, tsv = keys
    if values[tsv] is not None:
        given = [key for key in (src, tgt) if values[key] is not None]
        if given:
            raise ValueError(
                f"{prefix}{given[0]}: give {prefix}{src}/{tgt} or {prefix}{tsv}, not both "
                f"(set {given[0]} to null)"
            )
        return
    for key, other in ((src, tgt), (tgt, src)):
        if values[key] is None and (required or values[other] is not None):
            alternatives = f"{prefix}{tsv}" + (
                f", or the files in {elsewhere}" if elsewhere else ""
            )
            raise ValueError(f"{prefix}{key} is required (or give {alternatives})")


def _sides(config: Any, keys: tuple[str, str, str]) -> tuple[TextSide, TextSide]:
    """The sides named by (source key, target key, TSV key) of a checked config."""
    src, tgt, tsv = (getattr(config, key) for key in keys)
    if tsv is not None:
        return tsv_sides(tsv)
    return TextSide(Path(str(src))), TextSide(Path(str(tgt)))
