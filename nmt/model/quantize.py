"""CPU int8 dynamic quantisation, kept behind one small adapter.

`torch.ao.quantization.quantize_dynamic` still works in torch 2.13 but warns that it is
deprecated; if it goes away, only this file changes.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from nmt.model.seq2seq import Seq2Seq

# Module types replaced by their dynamic int8 versions. The custom LSTM variants keep their float
# recurrent weights; only their input projection (an nn.Linear) is quantised.
QUANTIZED_TYPES = {nn.LSTM, nn.GRU, nn.Linear}


def quantize_int8(model: Seq2Seq) -> Seq2Seq:
    """Return an int8 dynamically quantised copy of `model` for CPU inference.

    Weights of `nn.LSTM`, `nn.GRU` and `nn.Linear` are stored as int8; activations are quantised
    on the fly. Embeddings, attention vectors and custom-cell recurrent weights stay float32.

    Args:
        model: A float32 model on the CPU; it is not modified.

    Returns:
        The quantised copy, in eval mode.
    """
    if next(model.parameters()).device.type != "cpu":
        raise ValueError("quantize=int8 needs the model on the CPU")
    with warnings.catch_warnings():
        # Only the deprecation notices of the quantisation API itself, only for this call.
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated")
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor")
        quantized = torch.ao.quantization.quantize_dynamic(
            model, QUANTIZED_TYPES, dtype=torch.qint8
        )
    return quantized.eval()


def float_weights(linear: nn.Module) -> tuple[Tensor, Tensor | None]:
    """Return the float weight (out, in) and bias of a Linear, dequantised if it is int8.

    Args:
        linear: an `nn.Linear`, or the int8 version `quantize_int8` puts in its place.
    """
    if isinstance(linear, torch.ao.nn.quantized.dynamic.Linear):  # the weight is packed
        return linear.weight().dequantize(), linear.bias()
    return linear.weight, linear.bias
