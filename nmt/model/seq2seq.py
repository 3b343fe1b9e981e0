"""The GNMT encoder-decoder: embeddings, encoder, attention, decoder, output projection."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from nmt.model.attention import BahdanauAttention
from nmt.model.config import Seq2SeqConfig
from nmt.model.decoder import DecoderState, GNMTDecoder
from nmt.model.encoder import GNMTEncoder
from nmt.model.init import init_uniform_


class EncoderOutput(NamedTuple):
    """The encoded source batch.

    Attributes:
        enc_out: Encoder outputs (B,S,D).
        keys: Attention keys projected once per batch (B,S,A).
        src_mask: (B,S) bool, True on real tokens.
        src_lengths: (B,) long source lengths.
    """

    enc_out: Tensor
    keys: Tensor
    src_mask: Tensor
    src_lengths: Tensor


class Seq2Seq(nn.Module):
    """Wire the parts together; `build_model` creates them from a config.

    Args:
        src_embed: Source embedding (V_src, E); may be the same object as `tgt_embed`.
        tgt_embed: Target embedding (V, E).
        encoder: The encoder.
        decoder: The decoder, which owns the attention.
        output_proj: Projection H -> V; its weight may be `tgt_embed.weight` (tied).
    """

    def __init__(
        self,
        src_embed: nn.Embedding,
        tgt_embed: nn.Embedding,
        encoder: GNMTEncoder,
        decoder: GNMTDecoder,
        output_proj: nn.Linear,
    ) -> None:
        super().__init__()
        self.src_embed = src_embed
        self.tgt_embed = tgt_embed
        self.encoder = encoder
        self.decoder = decoder
        self.output_proj = output_proj

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """Encode a padded source batch.

        Args:
            src: (B,S) long token ids, padding at the end.
            src_lengths: (B,) long real lengths (>= 1).

        Returns:
            EncoderOutput with the outputs, projected keys, mask and lengths.
        """
        src_lengths = src_lengths.to(src.device)
        enc_out = self.encoder(self.src_embed(src), src_lengths)  # (B,S,D)
        keys = self.decoder.attention.project_keys(enc_out)  # (B,S,A)
        positions = torch.arange(src.shape[1], device=src.device)  # (S,)
        src_mask = positions.unsqueeze(0) < src_lengths.unsqueeze(1)  # (B,S)
        return EncoderOutput(enc_out, keys, src_mask, src_lengths)

    def init_state(self, enc: EncoderOutput) -> DecoderState:
        """Return the decoder state before the first target token (zero recurrent state)."""
        return self.decoder.init_state(enc.enc_out, enc.keys, enc.src_mask)

    def step(self, prev_tokens: Tensor, state: DecoderState) -> tuple[Tensor, Tensor, DecoderState]:
        """Advance the decoder by one token.

        Args:
            prev_tokens: (B,) long, the previous target tokens (BOS first).
            state: Decoder state; reorder it with `state.index_select` between steps if needed.

        Returns:
            log_probs (B,V) float32, attention weights (B,S), and the new state.
        """
        out, attn, state = self.decode_step(prev_tokens, state)  # (B,H)
        log_probs = torch.log_softmax(self.output_proj(out).float(), dim=-1)  # (B,V)
        return log_probs, attn, state

    def decode_step(
        self, prev_tokens: Tensor, state: DecoderState
    ) -> tuple[Tensor, Tensor, DecoderState]:
        """`step` before the output projection: top decoder output (B,H), attention, state."""
        return self.decoder.step(self.tgt_embed(prev_tokens), state)

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Score a target batch with teacher forcing.

        Args:
            src: (B,S) long source ids.
            src_lengths: (B,) long source lengths.
            tgt_in: (B,T) long target inputs (BOS + target, padded at the end).

        Returns:
            logits (B,T,V).
        """
        return self.forward_with_attn(src, src_lengths, tgt_in)[0]

    def forward_with_attn(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Like `forward`, also returning the attention weights (B,T,S) (e.g. for alignments)."""
        out, attn = self.features(src, src_lengths, tgt_in)  # (B,T,H), (B,T,S)
        return self.output_proj(out), attn

    def features(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher-forced top decoder outputs (B,T,H) before the projection, and attention.

        Training projects only the real target positions, in chunks (see
        `nmt.training.loss.projected_label_smoothed_nll`).
        """
        return self.decode_features(self.encode(src, src_lengths), tgt_in)

    def decode_features(self, enc: EncoderOutput, tgt_in: Tensor) -> tuple[Tensor, Tensor]:
        """`features` from an encoded source batch (e.g. when the encoding is used again)."""
        out, attn, _ = self.decoder(self.tgt_embed(tgt_in), self.init_state(enc))
        return out, attn  # (B,T,H), (B,T,S)


def build_model(
    config: Seq2SeqConfig, src_vocab_size: int, tgt_vocab_size: int, pad_id: int = 0
) -> Seq2Seq:
    """Create and initialise a GNMT model.

    Args:
        config: Model hyper-parameters (the `model:` config group).
        src_vocab_size: Source vocabulary size.
        tgt_vocab_size: Target vocabulary size V.
        pad_id: Padding id; its embedding row is zero and receives no gradient.

    Returns:
        The model, initialised with `init_uniform_(model, config.init_range)`.
    """
    for name, size in (("src_vocab_size", src_vocab_size), ("tgt_vocab_size", tgt_vocab_size)):
        if not 0 <= pad_id < size:
            raise ValueError(f"{name} must be > pad_id={pad_id}, got {size}")
    if config.share_embeddings and src_vocab_size != tgt_vocab_size:
        raise ValueError(
            "model.share_embeddings needs equal source and target vocabulary sizes "
            f"({src_vocab_size} != {tgt_vocab_size}); set model.share_embeddings=false"
        )
    tgt_embed = nn.Embedding(tgt_vocab_size, config.embed_dim, padding_idx=pad_id)
    src_embed = (
        tgt_embed
        if config.share_embeddings
        else nn.Embedding(src_vocab_size, config.embed_dim, padding_idx=pad_id)
    )
    enc_cfg, dec_cfg = config.encoder, config.decoder
    encoder = GNMTEncoder(
        config.embed_dim,
        enc_cfg.hidden_size,
        enc_cfg.num_layers,
        enc_cfg.dropout,
        config.rnn_type,
        config.layer_norm,
        enc_cfg.no_residual_layer,
    )
    attention = BahdanauAttention(
        dec_cfg.hidden_size,
        encoder.output_size,
        config.attention.hidden_size,
        config.attention.normalize,
    )
    decoder = GNMTDecoder(
        config.embed_dim,
        dec_cfg.hidden_size,
        dec_cfg.num_layers,
        dec_cfg.dropout,
        config.rnn_type,
        attention,
        encoder.output_size,
        config.layer_norm,
        config.bridge,
        dec_cfg.no_residual_layer,
    )
    output_proj = nn.Linear(dec_cfg.hidden_size, tgt_vocab_size)
    if config.tie_output:
        output_proj.weight = tgt_embed.weight
    model = Seq2Seq(src_embed, tgt_embed, encoder, decoder, output_proj)
    init_uniform_(model, config.init_range)
    return model
