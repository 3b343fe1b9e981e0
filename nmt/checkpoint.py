"""The checkpoint format: its section key and version, the typed metadata, loading, the model.

A checkpoint is a `torch.save` dict written by Lightning. Besides the weights (`state_dict`)
and the training-loop state it holds two parts that make it self-contained:

- `hyper_parameters`: the `TranslationModule` constructor arguments, which Lightning saves
  (model config, vocabulary sizes, special ids, training config, ...);
- `CHECKPOINT_KEY`: the section `TranslationModule.on_save_checkpoint` writes (tokenizers,
  languages, shortlist, skipped updates, the format version, and the module's RNG states).

`CheckpointMeta` is the typed view of both. No Lightning or Hydra here: translation and
training both import this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nmt.model.config import Seq2SeqConfig
from nmt.model.seq2seq import Seq2Seq, build_model
from nmt.tokenizer import SpecialIds

CHECKPOINT_KEY = "nmt"
# Layout version stored in that section; bump it when checkpoints change incompatibly.
# Checkpoints written before the field existed have layout 1.
CHECKPOINT_FORMAT = 1


@dataclass(frozen=True)
class HyperParameters:
    """What the network is: the parts of `checkpoint["hyper_parameters"]` a rebuild needs.

    Attributes:
        model: the `model` config group as a dict (see `Seq2SeqConfig`).
        src_vocab_size: source vocabulary size.
        tgt_vocab_size: target vocabulary size.
        special: the special token ids.
        train_config: the resolved training config, kept for reference (None if not stored).
    """

    model: dict[str, Any]
    src_vocab_size: int
    tgt_vocab_size: int
    special: SpecialIds
    train_config: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, hparams: Mapping[str, Any]) -> HyperParameters:
        """Read the saved `TranslationModule` arguments (other arguments are ignored)."""
        return cls(
            model=dict(hparams["model"]),
            src_vocab_size=int(hparams["src_vocab_size"]),
            tgt_vocab_size=int(hparams["tgt_vocab_size"]),
            special=SpecialIds(**hparams["special_ids"]),
            train_config=hparams.get("train_config"),
        )

    @property
    def model_config(self) -> Seq2SeqConfig:
        """The typed model config."""
        return Seq2SeqConfig.from_dict(self.model)


@dataclass(frozen=True)
class CheckpointMeta:
    """Everything a checkpoint carries besides weights and training-loop state.

    Attributes:
        hparams: the network's hyper-parameters (stored by Lightning, read-only here).
        src_spm: serialized SentencePiece model of the source side.
        tgt_spm: the same for the target side (equal bytes when the model is joint).
        src_lang: source language code.
        tgt_lang: target language code (a name such as "multi" when multilingual).
        tgt_langs: the languages a multilingual model has <2xx> tags for; () when bilingual.
        shortlist: the decoding shortlist (`nmt.data.shortlist.Shortlist.to_dict`), or None.
        skipped_batches: updates dropped for a non-finite loss or gradient so far.
    """

    hparams: HyperParameters
    src_spm: bytes
    tgt_spm: bytes
    src_lang: str
    tgt_lang: str
    tgt_langs: tuple[str, ...] = ()
    shortlist: dict[str, Any] | None = None
    skipped_batches: int = 0

    @classmethod
    def from_checkpoint(cls, checkpoint: Mapping[str, Any]) -> CheckpointMeta:
        """Read the metadata of a loaded checkpoint (see `load_checkpoint`)."""
        section = checkpoint[CHECKPOINT_KEY]
        return cls(
            hparams=HyperParameters.from_dict(checkpoint["hyper_parameters"]),
            src_spm=section["src_spm"],
            tgt_spm=section["tgt_spm"],
            src_lang=section["src_lang"],
            tgt_lang=section["tgt_lang"],
            tgt_langs=tuple(section.get("tgt_langs") or ()),
            shortlist=section.get("shortlist"),
            skipped_batches=int(section.get("skipped_batches", 0)),
        )

    def to_section(self) -> dict[str, Any]:
        """The `CHECKPOINT_KEY` section for this metadata, with the current format version.

        The hyper-parameters are not part of it: Lightning saves them. A missing shortlist
        is written as no "shortlist" key, as the format has always done.
        """
        section: dict[str, Any] = {
            "src_spm": self.src_spm,
            "tgt_spm": self.tgt_spm,
            "src_lang": self.src_lang,
            "tgt_lang": self.tgt_lang,
            "tgt_langs": list(self.tgt_langs),
            "skipped_batches": self.skipped_batches,
            "format": CHECKPOINT_FORMAT,
        }
        if self.shortlist is not None:
            section["shortlist"] = self.shortlist
        return section


def check_same_vocabulary(
    first_path: str | Path, first: CheckpointMeta, path: str | Path, meta: CheckpointMeta
) -> None:
    """Refuse a checkpoint whose token ids mean other pieces than the first one's (ensembles).

    Compared: both SentencePiece models (an ensemble tokenizes the source once), the special
    ids, and the languages (a multilingual model's <2xx> tags included).

    Raises:
        ValueError: one line naming both checkpoint files and what differs.
    """
    checks = (
        ("target SentencePiece model", first.tgt_spm == meta.tgt_spm),
        ("source SentencePiece model", first.src_spm == meta.src_spm),
        ("special ids", first.hparams.special == meta.hparams.special),
        ("target language tags", first.tgt_langs == meta.tgt_langs),
        ("language pair", (first.src_lang, first.tgt_lang) == (meta.src_lang, meta.tgt_lang)),
    )
    for name, same in checks:
        if not same:
            raise ValueError(
                f"ckpt: {path} and {first_path} have a different {name}; the models of an "
                "ensemble must share their vocabularies"
            )


def load_checkpoint(path: str | Path, key: str = "ckpt") -> dict[str, Any]:
    """Load a checkpoint file on the CPU, with a one-line error for bad paths or contents.

    Args:
        path: the checkpoint.
        key: the config key that named it, for messages.

    Raises:
        ValueError: missing, unreadable (truncated, not a checkpoint), not written by nmt, or
            of another checkpoint format.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{key}: {path}: file not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{key}: {path}: not a readable checkpoint ({reason})") from None
    needed = (CHECKPOINT_KEY, "state_dict", "hyper_parameters")
    if not isinstance(checkpoint, dict) or any(k not in checkpoint for k in needed):
        raise ValueError(f"{key}: {path}: not an nmt checkpoint (no tokenizer/model section)")
    found = checkpoint[CHECKPOINT_KEY].get("format", 1)
    if found != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{key}: {path}: checkpoint format {found!r}; this version of nmt reads format "
            f"{CHECKPOINT_FORMAT}"
        )
    return checkpoint


def load_meta(path: str | Path, key: str = "ckpt") -> CheckpointMeta:
    """`CheckpointMeta` of the checkpoint at `path` (errors as `load_checkpoint`)."""
    return CheckpointMeta.from_checkpoint(load_checkpoint(path, key))


def model_from_checkpoint(checkpoint: Mapping[str, Any]) -> Seq2Seq:
    """Rebuild the network from the hyper-parameters and load its weights (eval mode)."""
    hparams = HyperParameters.from_dict(checkpoint["hyper_parameters"])
    model = build_model(
        hparams.model_config, hparams.src_vocab_size, hparams.tgt_vocab_size, hparams.special.pad
    )
    prefix = "model."
    weights = {
        k[len(prefix) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)
    }
    model.load_state_dict(weights)
    return model.eval()
