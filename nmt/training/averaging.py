"""Checkpoint averaging: the mean of the parameters of several checkpoints of one run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from nmt.checkpoint import HyperParameters, load_checkpoint


def select_checkpoints(paths: list[str], directory: str | None, last_n: int | None) -> list[Path]:
    """The explicit `paths`, or the `last_n` checkpoints of `directory` with the highest step.

    `last.ckpt` repeats another checkpoint's step, so a directory scan skips it.
    """
    if paths:
        return [Path(p) for p in paths]
    if directory is None or last_n is None:
        raise ValueError("give ckpts=[A,B,...] or dir=RUN/checkpoints with last_n=N")
    if last_n < 1:
        raise ValueError(f"last_n must be >= 1, got {last_n}")
    found = [p for p in Path(directory).glob("*.ckpt") if p.name != "last.ckpt"]
    if len(found) < last_n:
        raise ValueError(f"dir: {directory} has {len(found)} checkpoint(s), last_n={last_n} asked")
    steps = {p: int(load_checkpoint(p).get("global_step", 0)) for p in found}
    return sorted(found, key=lambda p: steps[p])[-last_n:]


def average_checkpoints(paths: list[Path]) -> dict[str, Any]:
    """Average the model parameters; the rest (config, tokenizers) comes from the last path.

    The result is a self-contained checkpoint for translation; it holds no optimizer state.
    """
    if not paths:
        raise ValueError("no checkpoints to average")
    checkpoints = [load_checkpoint(p) for p in paths]
    base = checkpoints[-1]
    keys = base["state_dict"].keys()
    model = HyperParameters.from_dict(base["hyper_parameters"]).model
    for path, ckpt in zip(paths, checkpoints, strict=True):
        same_model = HyperParameters.from_dict(ckpt["hyper_parameters"]).model == model
        if ckpt["state_dict"].keys() != keys or not same_model:
            raise ValueError(f"{path}: a different model than {paths[-1]}; cannot average")
    state = {}
    for key in keys:
        tensors = [ckpt["state_dict"][key] for ckpt in checkpoints]
        if tensors[0].is_floating_point():
            total = torch.stack([t.double() for t in tensors]).sum(0)
            state[key] = (total / len(tensors)).to(tensors[0].dtype)
        else:
            state[key] = tensors[-1]
    averaged = {k: v for k, v in base.items() if k not in ("optimizer_states", "lr_schedulers")}
    averaged["state_dict"] = state
    averaged["averaged_from"] = [str(p) for p in paths]
    return averaged
