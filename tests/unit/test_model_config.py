"""Seq2SeqConfig: the one place the model's hyper-parameters are checked (key named)."""

import dataclasses

import pytest

from nmt.model.config import Seq2SeqConfig, StackConfig


@pytest.mark.parametrize("side", ["encoder", "decoder"])
def test_rejects_single_layer(side):
    with pytest.raises(ValueError, match=f"model.{side}.num_layers must be >= 2, got 1"):
        Seq2SeqConfig(**{side: {"num_layers": 1}})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"decoder": {"hidden_size": 0}}, "model.decoder.hidden_size must be >= 1, got 0"),
        ({"encoder": {"dropout": 1.0}}, r"model.encoder.dropout must be in \[0, 1\), got 1.0"),
        ({"init_range": -0.1}, "model.init_range must be >= 0, got -0.1"),
        (
            {"encoder": {"no_residual_layer": 2}},
            r"model.encoder.no_residual_layer must be null or one of the residual layers 3..4 "
            r"\(1-based; layers 1 and 2 have none\), got 2",
        ),
        (
            {"decoder": {"num_layers": 4, "no_residual_layer": 5}},
            r"model.decoder.no_residual_layer must be null or one of the residual layers 3..4",
        ),
    ],
)
def test_out_of_range_values_name_their_key(values, message):
    with pytest.raises(ValueError, match=message):
        Seq2SeqConfig(**values)


def test_encoder_and_decoder_share_one_stack_class():
    config = Seq2SeqConfig(encoder={"num_layers": 3}, decoder={"num_layers": 5})
    assert type(config.encoder) is type(config.decoder) is StackConfig
    assert (config.encoder.num_layers, config.decoder.num_layers) == (3, 5)
    assert Seq2SeqConfig.from_dict(dataclasses.asdict(config)) == config  # checkpoint round trip
