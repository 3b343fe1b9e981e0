"""Typed hyper-parameters of the GNMT network.

The dataclasses mirror the nested `model:` config group key for key
(`model.encoder.num_layers`, `model.attention.hidden_size`, ...), so a Hydra
config converts with `Seq2SeqConfig.from_dict(OmegaConf.to_container(cfg.model))`
and a checkpoint stores `dataclasses.asdict(config)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RNN_TYPES = ("lstm", "gru", "lstm_peephole", "lstm_coupled")


@dataclass
class StackConfig:
    """A stack of recurrent layers: the encoder's (`model.encoder`) or the decoder's.

    GNMT wiring: the encoder's layer 1 is bidirectional, the decoder's layer-1 output is the
    attention query; in both, layers 3..L are residual (`nmt.model.cells.is_residual`), except
    the 1-based layer `no_residual_layer` (null: none; Liu et al. 2021 drop the residual of a
    middle encoder layer for zero-shot translation). Checked by `Seq2SeqConfig`, which knows
    the key each stack sits under.
    """

    num_layers: int = 4
    hidden_size: int = 256
    dropout: float = 0.2
    no_residual_layer: int | None = None

    def check(self, key: str) -> None:
        """Raise ValueError naming `key`.<field> for a value out of range."""
        if self.num_layers < 2:
            raise ValueError(f"{key}.num_layers must be >= 2, got {self.num_layers}")
        if self.hidden_size < 1:
            raise ValueError(f"{key}.hidden_size must be >= 1, got {self.hidden_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"{key}.dropout must be in [0, 1), got {self.dropout}")
        if (
            self.no_residual_layer is not None
            and not 3 <= self.no_residual_layer <= self.num_layers
        ):
            raise ValueError(
                f"{key}.no_residual_layer must be null or one of the residual layers "
                f"3..{self.num_layers} (1-based; layers 1 and 2 have none), "
                f"got {self.no_residual_layer}"
            )


@dataclass
class AttentionConfig:
    """Normalized Bahdanau attention; `hidden_size` is the additive scoring dimension."""

    hidden_size: int = 256
    normalize: bool = True

    def __post_init__(self) -> None:
        if self.hidden_size < 1:
            raise ValueError(f"model.attention.hidden_size must be >= 1, got {self.hidden_size}")


@dataclass
class Seq2SeqConfig:
    """The whole network. Vocabulary sizes come from the tokenizer, not from here.

    `layer_norm` normalises the output of every recurrent layer, encoder and decoder, after the
    residual sum (Ba et al. 2016, applied between layers as in Marian's RNN models rather than
    inside the cell, so the fused LSTM kernel stays). `bridge` starts every decoder layer from
    h = tanh(W · mean of the encoder outputs) instead of zeros (the "bridge" of Nematus and
    JoeyNMT), so the decoder sees the source before attention has formed.
    """

    rnn_type: str = "lstm"
    embed_dim: int = 256
    share_embeddings: bool = True
    tie_output: bool = False
    init_range: float = 0.1
    layer_norm: bool = False
    bridge: bool = False
    encoder: StackConfig = field(default_factory=StackConfig)
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    decoder: StackConfig = field(default_factory=StackConfig)

    def __post_init__(self) -> None:
        if isinstance(self.encoder, dict):
            self.encoder = StackConfig(**self.encoder)
        if isinstance(self.attention, dict):
            self.attention = AttentionConfig(**self.attention)
        if isinstance(self.decoder, dict):
            self.decoder = StackConfig(**self.decoder)
        self.encoder.check("model.encoder")
        self.decoder.check("model.decoder")
        if self.rnn_type not in RNN_TYPES:
            raise ValueError(f"model.rnn_type must be one of {RNN_TYPES}, got {self.rnn_type!r}")
        if self.embed_dim < 1:
            raise ValueError(f"model.embed_dim must be >= 1, got {self.embed_dim}")
        if self.init_range < 0:
            raise ValueError(f"model.init_range must be >= 0, got {self.init_range}")
        if self.tie_output and self.embed_dim != self.decoder.hidden_size:
            raise ValueError(
                "model.tie_output needs model.embed_dim == model.decoder.hidden_size "
                f"({self.embed_dim} != {self.decoder.hidden_size})"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Seq2SeqConfig:
        """Build from a plain (nested) dict, rejecting unknown keys with their name."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown model config key(s): {', '.join('model.' + k for k in unknown)}"
            )
        return cls(**values)
