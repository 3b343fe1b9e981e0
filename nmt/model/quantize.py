"""CPU int8 dynamic quantisation, kept behind one small adapter.

`torch.ao.quantization.quantize_dynamic` still works in torch 2.13 but warns that it is
deprecated; if it goes away, only this file changes.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional

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


def row_subset(linear: nn.Module, rows: Tensor) -> Callable[[Tensor], Tensor]:
    """Return x -> linear(x)[..., rows], computing only those output rows.

    An int8 Linear keeps its int8 weights: the rows are packed once here and multiplied by the
    activations quantised on the fly, exactly as the whole int8 layer does, so each output equals
    the whole layer's (dequantising them to float instead costs 2-3x as much per step).

    Args:
        linear: an `nn.Linear`, or the int8 version `quantize_int8` puts in its place.
        rows: (V',) long, the output rows to keep, in the order wanted.
    """
    if isinstance(linear, torch.ao.nn.quantized.dynamic.Linear):
        weight, bias = _int8_weights(linear)
        packed = torch.ops.quantized.linear_prepack(
            weight.index_select(0, rows), None if bias is None else bias[rows]
        )
        # reduce_range as the int8 Linear's own forward (module version >= 4)
        return lambda x: torch.ops.quantized.linear_dynamic(x, packed, reduce_range=True)
    weight = linear.weight.index_select(0, rows)  # (V',H)
    bias = None if linear.bias is None else linear.bias.index_select(0, rows)  # (V',)
    return lambda x: functional.linear(x, weight, bias)


# Unpacking an int8 Linear's weights costs more than packing a shortlist's rows (about 7 ms for
# 8k x 256 against 1 ms): it is done once per module. Inference modules' weights never change.
_UNPACKED: weakref.WeakKeyDictionary[nn.Module, tuple[Tensor, Tensor | None]] = (
    weakref.WeakKeyDictionary()
)


def _int8_weights(linear: nn.Module) -> tuple[Tensor, Tensor | None]:
    """The int8 weight (out, in) and float bias of an int8 Linear, unpacked once."""
    if linear not in _UNPACKED:
        _UNPACKED[linear] = (linear.weight(), linear.bias())
    return _UNPACKED[linear]
