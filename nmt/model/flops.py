"""Analytic matmul FLOP counts of the GNMT network, from layer shapes alone.

Only matrix products are counted (one multiply-add = 2 FLOPs); element-wise gate arithmetic,
softmax, tanh, peephole products and embedding lookups are ignored. With G gates per unit
(lstm and lstm_peephole: 4, gru and lstm_coupled: 3), one recurrent layer with input size I and
hidden size H costs G·H·(I + H) multiply-adds per token. Writing E embed_dim, H_e / H_d the
encoder / decoder hidden sizes, A the attention size, L_e / L_d the layer counts, V the target
vocabulary and S the source length, the multiply-adds are

    encoder, per source token: 2·G·H_e·(E + H_e)          bidirectional layer 1
                               + G·H_e·(2H_e + H_e)        layer 2
                               + (L_e - 2)·G·H_e·2H_e      layers 3..L_e
                               + A·H_e                     key projection
    decoder, per target token: G·H_d·(E + H_d)            layer 1
                               + A·H_d                     query projection
                               + S·A + S·H_e               scores (v·tanh) and context
                               + (L_d - 1)·G·H_d·(H_d + H_e + H_d)   layers 2..L_d
                               + H_d·V                     output projection

A training step costs 3x its forward pass (backward = 2x forward, the usual estimate).
Benchmarks divide these counts by measured time to get the model's FLOP/s. Pass average
*padded* lengths to count the work done, real lengths to count the useful work.
"""

from __future__ import annotations

from nmt.model.config import Seq2SeqConfig

_NUM_GATES = {"lstm": 4, "gru": 3, "lstm_peephole": 4, "lstm_coupled": 3}


def _rnn_macs(rnn_type: str, input_size: int, hidden_size: int) -> int:
    """Multiply-adds of one recurrent layer for one token."""
    return _NUM_GATES[rnn_type] * hidden_size * (input_size + hidden_size)


def encoder_flops_per_token(config: Seq2SeqConfig) -> int:
    """Return the forward FLOPs of the encoder (and key projection) per source token."""
    h, rnn = config.encoder.hidden_size, config.rnn_type
    macs = 2 * _rnn_macs(rnn, config.embed_dim, h) + _rnn_macs(rnn, 2 * h, h)
    macs += (config.encoder.num_layers - 2) * _rnn_macs(rnn, h, h)
    macs += config.attention.hidden_size * h
    return 2 * macs


def decode_step_flops(config: Seq2SeqConfig, tgt_vocab_size: int, src_len: float) -> float:
    """Return the forward FLOPs of one decoder step for one hypothesis (= per target token).

    Args:
        config: Model hyper-parameters.
        tgt_vocab_size: Target vocabulary size V.
        src_len: Source length S the step attends over.
    """
    h, h_enc, rnn = config.decoder.hidden_size, config.encoder.hidden_size, config.rnn_type
    attn_size = config.attention.hidden_size
    macs = _rnn_macs(rnn, config.embed_dim, h) + attn_size * h
    macs += (config.decoder.num_layers - 1) * _rnn_macs(rnn, h + h_enc, h)
    macs += h * tgt_vocab_size
    return 2 * (macs + src_len * (attn_size + h_enc))


def forward_flops_per_token(
    config: Seq2SeqConfig, tgt_vocab_size: int, src_len: float, tgt_len: float
) -> float:
    """Return the forward FLOPs per target token, the encoder amortised over the target.

    Args:
        config: Model hyper-parameters.
        tgt_vocab_size: Target vocabulary size V.
        src_len: Average source length S.
        tgt_len: Average target length T (> 0).
    """
    encoder = encoder_flops_per_token(config) * src_len / tgt_len
    return encoder + decode_step_flops(config, tgt_vocab_size, src_len)


def train_flops_per_token(
    config: Seq2SeqConfig, tgt_vocab_size: int, src_len: float, tgt_len: float
) -> float:
    """Return the training (forward + backward) FLOPs per target token: 3x the forward."""
    return 3 * forward_flops_per_token(config, tgt_vocab_size, src_len, tgt_len)
