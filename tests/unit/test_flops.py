"""Analytic FLOP counts against hand arithmetic and against the parameter shapes."""

import pytest
from torch import nn

from nmt.model.config import RNN_TYPES, Seq2SeqConfig
from nmt.model.flops import (
    decode_step_flops,
    encoder_flops_per_token,
    forward_flops_per_token,
    train_flops_per_token,
)
from nmt.model.seq2seq import build_model


def _config(rnn_type="lstm", layers=3):
    return Seq2SeqConfig(
        rnn_type=rnn_type,
        embed_dim=4,
        share_embeddings=False,
        encoder={"num_layers": layers, "hidden_size": 3},
        decoder={"num_layers": layers, "hidden_size": 3},
        attention={"hidden_size": 2},
    )


def test_tiny_lstm_by_hand():
    # E=4, H=3, A=2, L=3, V=7, S=5, T=4, 4 gates.
    # Encoder MACs/token: bi layer 2*4*3*(4+3)=168, layer 2 4*3*(6+3)=108,
    #   layer 3 4*3*(3+3)=72, keys 2*3=6  -> 354.
    # Decoder MACs/token: layer 1 4*3*(4+3)=84, query 2*3=6, attention 5*(2+3)=25,
    #   layers 2-3 2*4*3*(3+3+3)=216, projection 3*7=21 -> 352.
    config = _config()
    assert encoder_flops_per_token(config) == 708
    assert decode_step_flops(config, 7, 5) == 704
    assert forward_flops_per_token(config, 7, 5, 4) == pytest.approx(708 * 5 / 4 + 704)
    assert train_flops_per_token(config, 7, 5, 4) == pytest.approx(3 * (885 + 704))


def test_tiny_gru_by_hand():
    # Same shapes with 3 gates: encoder 2*3*3*7 + 3*3*9 + 3*3*6 + 6 = 126+81+54+6 = 267,
    # decoder 3*3*7 + 6 + 25 + 2*3*3*9 + 21 = 63+6+25+162+21 = 277.
    config = _config("gru")
    assert encoder_flops_per_token(config) == 2 * 267
    assert decode_step_flops(config, 7, 5) == 2 * 277


def _matrix_params(module: nn.Module) -> int:
    """Weight-matrix entries = multiply-adds per token of the linear maps inside `module`.

    Peephole weights are (3,H) but act element-wise, so they are not matrices.
    """
    params = module.named_parameters()
    return sum(p.numel() for name, p in params if p.dim() == 2 and "peephole" not in name)


@pytest.mark.parametrize("rnn_type", RNN_TYPES)
@pytest.mark.parametrize("layers", [2, 4])
def test_matches_parameter_shapes_of_the_built_model(rnn_type, layers):
    """Recurrent and projection matmuls touch each weight entry once per token."""
    config, vocab, src_len = _config(rnn_type, layers), 11, 6
    model = build_model(config, vocab, vocab)
    attention = model.decoder.attention
    encoder_macs = _matrix_params(model.encoder) + attention.key_proj.weight.numel()
    assert encoder_flops_per_token(config) == 2 * encoder_macs
    # Decoder weights include the query projection; add the per-source-position attention work.
    decoder_macs = _matrix_params(model.decoder) - attention.key_proj.weight.numel()
    decoder_macs += model.output_proj.weight.numel()
    decoder_macs += src_len * (attention.hidden_size + config.encoder.hidden_size)
    assert decode_step_flops(config, vocab, src_len) == 2 * decoder_macs
