"""Typed optimiser settings (the `optim` config group)."""

from __future__ import annotations

from dataclasses import dataclass, field

from nmt.training.lr_schedule import ScheduleConfig
from nmt.training.nonfinite import NONFINITE_POLICIES


@dataclass(frozen=True)
class OptimConfig(ScheduleConfig):
    """Adam, label smoothing and gradient clipping, plus the schedule keys it inherits."""

    lr: float = 2.0e-3
    betas: tuple[float, float] = field(default=(0.9, 0.999))
    eps: float = 1.0e-8
    weight_decay: float = 0.0
    label_smoothing: float = 0.1
    grad_clip: float = 5.0
    loss_chunk: int = 256  # output-layer rows projected at once in the fused loss
    # On the CPU, the additive attention's (B,T,S,A) tanh is computed, and recomputed in the
    # backward pass, a block of about this many KiB at a time, which stays in the cache
    # (BahdanauAttention.chunk_bytes); null: in one pass, kept for the backward pass.
    attention_chunk_kib: int | None = 1024
    # Weight of the encoder alignment loss (nmt.training.loss.encoder_alignment_loss: the
    # encoder also reads each target, pooled source and target encodings are pulled together;
    # for zero-shot directions of a multilingual model; needs one SentencePiece model for
    # both sides). 0: off (the encoder reads the sources only).
    encoder_alignment: float = 0.0
    # The update from which it applies: from the start it holds the encoder on the early loss
    # plateau (it is the encoder's only signal while the decoder still ignores the source).
    encoder_alignment_from: int = 0
    # Online back-translation into a multilingual model's untrained directions
    # (nmt.training.back_translation): the probability that a training pair s -> t with a
    # third language z (s -> z trained, z -> t not) is trained as z' -> t, z' the model's own
    # greedy translation of the source into z. 0: off.
    back_translation: float = 0.0
    back_translation_from: int = 0  # the first update it applies at
    nonfinite: str = "skip"  # a NaN/inf loss or gradient: skip the update, or stop
    max_skipped: int = 100  # with skip: stop once more updates than this were skipped

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lr <= 0:
            raise ValueError(f"optim.lr must be > 0, got {self.lr}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"optim.betas must be two values in [0, 1), got {self.betas}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"optim.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.grad_clip < 0:
            raise ValueError(f"optim.grad_clip must be >= 0 (0 = off), got {self.grad_clip}")
        if self.encoder_alignment < 0:
            raise ValueError(f"optim.encoder_alignment must be >= 0, got {self.encoder_alignment}")
        if self.encoder_alignment_from < 0:
            raise ValueError(
                f"optim.encoder_alignment_from must be >= 0, got {self.encoder_alignment_from}"
            )
        if not 0.0 <= self.back_translation <= 1.0:
            raise ValueError(
                f"optim.back_translation must be in [0, 1], got {self.back_translation}"
            )
        if self.back_translation_from < 0:
            raise ValueError(
                f"optim.back_translation_from must be >= 0, got {self.back_translation_from}"
            )
        if self.loss_chunk < 1:
            raise ValueError(f"optim.loss_chunk must be >= 1, got {self.loss_chunk}")
        if self.attention_chunk_kib is not None and self.attention_chunk_kib < 1:
            raise ValueError(
                f"optim.attention_chunk_kib must be >= 1 or null, got {self.attention_chunk_kib}"
            )
        if self.nonfinite not in NONFINITE_POLICIES:
            raise ValueError(
                f"optim.nonfinite must be one of {NONFINITE_POLICIES}, got {self.nonfinite!r}"
            )
        if self.max_skipped < 0:
            raise ValueError(f"optim.max_skipped must be >= 0, got {self.max_skipped}")
