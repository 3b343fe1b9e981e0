"""Two "nodes" on this machine: torchrun started twice (static rendezvous on the loopback,
one process per node, gloo), as README's multi-node section documents. Lightning must take
ranks and world size from torchrun's environment (TorchElasticEnvironment)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nmt.tasks.hydra_setup import ROOT_DIR
from nmt.tasks.train import train
from tests.conftest import compose_config
from tests.integration.test_reliability_train import validation_metrics

RUN = ["experiment=smoke", "threads=1", "trainer.max_steps=10", "trainer.val_check_interval=5"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_node(node_rank: int, port: int, root: Path, data_dir: Path) -> subprocess.Popen:
    """`torchrun --nnodes=2 --nproc-per-node=1 --node-rank=R ... scripts/train.py ...`."""
    cmd = [
        *(sys.executable, "-m", "torch.distributed.run"),  # what the `torchrun` script runs
        "--nnodes=2",
        "--nproc-per-node=1",
        f"--node-rank={node_rank}",
        "--master-addr=127.0.0.1",
        f"--master-port={port}",
        str(ROOT_DIR / "scripts" / "train.py"),
        "trainer=ddp_cpu",
        "trainer.devices=1",
        "trainer.num_nodes=2",
        *RUN,
        f"paths.data_dir={data_dir}",
        f"paths.log_dir={root / 'logs'}",
        f"paths.output_dir={root / 'out'}",
    ]
    path = os.pathsep.join(p for p in (str(ROOT_DIR), os.environ.get("PYTHONPATH")) if p)
    with (
        open(root / f"stdout{node_rank}", "w") as out,
        open(root / f"stderr{node_rank}", "w") as err,
    ):
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=err,
            env={**os.environ, "PYTHONPATH": path},
            start_new_session=True,
        )


@pytest.mark.slow
def test_two_nodes_with_torchrun_train_validate_and_write_one_best_checkpoint(tmp_path):
    data_dir = tmp_path / "data"  # shared by the nodes (a cluster's shared file system)
    train(
        compose_config(
            "train",
            tmp_path / "prepare",
            [*RUN, f"paths.data_dir={data_dir}", "trainer.max_steps=1"],
        )
    )
    port = free_port()
    nodes = [start_node(rank, port, tmp_path, data_dir) for rank in (0, 1)]
    try:
        codes = [node.wait(timeout=300) for node in nodes]
    finally:
        for node in nodes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGKILL)
    stderr = [(tmp_path / f"stderr{rank}").read_text() for rank in (0, 1)]
    assert codes == [0, 0], [text[-3000:] for text in stderr]
    for rank in (0, 1):  # Lightning's own line: ranks and world size come from torchrun
        assert f"GLOBAL_RANK: {rank}, MEMBER: {rank + 1}/2" in stderr[rank], stderr[rank][-3000:]
    ckpt_dir = tmp_path / "out" / "checkpoints"
    best = sorted(ckpt_dir.glob("best-*.ckpt"))
    names = sorted(p.name for p in ckpt_dir.iterdir())
    finals = [name for name in names if name.startswith("final-step")]  # last weights, not best
    assert len(best) == 1 and len(finals) <= 1
    assert names == sorted([best[0].name, "last.ckpt", *finals])
    stdout = [(tmp_path / f"stdout{rank}").read_text().splitlines() for rank in (0, 1)]
    assert stdout[0][-1].startswith("best_checkpoint: ")
    chosen = Path(stdout[0][-1].removeprefix("best_checkpoint: "))
    assert chosen.parent == ckpt_dir and chosen.name in (best[0].name, *finals)
    assert not any(line.startswith("best_checkpoint:") for line in stdout[1])
    ckpt = torch.load(chosen, weights_only=True)
    assert ckpt["global_step"] in (5, 10)
    assert ckpt["hyper_parameters"]["train_config"]["trainer"]["num_nodes"] == 2
    # validated at steps 5 and 10, then once more for the final weights when they are kept
    assert sorted(validation_metrics(tmp_path)) == [4, 9] + ([10] if finals else [])
