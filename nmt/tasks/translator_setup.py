"""The translation settings that `translate` and `evaluate` share, and the Translator they build.

The keys sit at the top level of conf/translate.yaml and conf/evaluate.yaml
(`quantize=int8`, `device=cuda`, ...), included there from conf/translator/default.yaml;
their defaults are `TranslatorConfig`'s, registered in Hydra's ConfigStore (`hydra_setup`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from omegaconf import DictConfig, ListConfig

from nmt.data.corpus import ON_INVALID_UTF8

if TYPE_CHECKING:
    from nmt.translator import Translator


@dataclass(frozen=True)
class TranslatorConfig:
    """How a checkpoint is loaded and fed, checked before anything is read."""

    device: str = "cpu"  # cpu, cuda, cuda:1, ...
    quantize: str | None = None  # int8: dynamic int8 LSTM/Linear on the CPU
    shortlist: bool = True  # decode over the checkpoint's shortlist (if any); false: all pieces
    max_src_tokens: int = 250  # longer inputs are truncated to this many pieces (warned)
    tgt_lang: str | None = None  # multilingual checkpoint: the language to translate into
    batch_tokens: int = 6000  # padded source tokens x beam size per batch
    # Single-threaded decoding processes (`nmt.decode_pool`); 1: decode here with `threads`.
    # null: one per intra-op thread on the CPU (1 on a GPU): on 2 cores, 2 workers x 1 thread
    # beat 1 process x 2 threads (beam 5: fp32 1.06-1.09x, int8 1.28-1.4x).
    workers: int | None = None
    # CPU decoding steps compute the attention's (rows, S, A) tanh in blocks of about this
    # many KiB, which stay in the L2 cache (beam 5: 1.17x fp32 and int8); null: one pass.
    attention_chunk_kib: int | None = 256
    progress: bool = True  # progress bar on stderr
    on_invalid_utf8: str = "error"  # error: stop naming the line | replace: U+FFFD, counted

    def __post_init__(self) -> None:
        if self.quantize not in (None, "int8"):
            raise ValueError(f"quantize must be null or int8, got {self.quantize!r}")
        for key in ("shortlist", "progress"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"{key} must be true or false, got {getattr(self, key)!r}")
        for key in ("max_src_tokens", "batch_tokens", "workers", "attention_chunk_kib"):
            value = getattr(self, key)
            if key in ("workers", "attention_chunk_kib") and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be an integer >= 1, got {value!r}")
        if self.on_invalid_utf8 not in ON_INVALID_UTF8:
            raise ValueError(
                f"on_invalid_utf8 must be one of {', '.join(ON_INVALID_UTF8)}, "
                f"got {self.on_invalid_utf8!r}"
            )

    @classmethod
    def from_config(cls, cfg: DictConfig) -> TranslatorConfig:
        """Pick the translator keys out of a composed translate/evaluate config."""
        return cls(**{f.name: cfg[f.name] for f in dataclasses.fields(cls)})


def checkpoint_paths(ckpt: object) -> list[str]:
    """The `ckpt` value as a list of paths: one path, or a list of them (`ckpt=[A,B,C]`)."""
    if isinstance(ckpt, str | os.PathLike):
        return [str(ckpt)]
    paths = ckpt if isinstance(ckpt, ListConfig | list | tuple) else []
    if paths and all(isinstance(path, str | os.PathLike) for path in paths):
        return [str(path) for path in paths]
    raise ValueError(f"ckpt must be a checkpoint path or a list of them [A,B,...], got {ckpt!r}")


def build_translator(ckpt: str | Sequence[str], config: TranslatorConfig) -> Translator:
    """Load the checkpoint `ckpt` as `config` says; a list of checkpoints decodes as an ensemble.

    An ensemble (`nmt.model.ensemble`) averages the models' next-token probabilities at every
    step; `config` (device, quantize, shortlist, ...) applies to every member.
    """
    # Imported here: torch and the model are only needed once a checkpoint is loaded, so
    # `evaluate hyp=FILE` stays light.
    from nmt.translator import Translator

    paths = checkpoint_paths(ckpt)
    return Translator.from_checkpoint(
        paths[0] if len(paths) == 1 else paths,
        device=config.device,
        quantize=config.quantize,
        max_src_tokens=config.max_src_tokens,
        tgt_lang=config.tgt_lang,
        shortlist=config.shortlist,
        workers=decoding_workers(config),
        attention_chunk_kib=config.attention_chunk_kib,
    )


def decoding_workers(config: TranslatorConfig) -> int:
    """`config.workers`, or for null one per intra-op thread on the CPU and 1 on a GPU."""
    if config.workers is not None:
        return config.workers
    if config.device != "cpu":
        return 1
    import torch

    return torch.get_num_threads()


def warn_truncated(count: int, config: TranslatorConfig) -> None:
    """Say on stderr how many input lines were cut to `max_src_tokens` pieces (if any)."""
    if count:
        print(
            f"warning: {count} input line(s) longer than max_src_tokens={config.max_src_tokens} "
            "pieces were truncated before translation",
            file=sys.stderr,
        )
