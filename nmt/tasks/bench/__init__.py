"""`bench` task: training and translation speed, memory and FLOP utilisation on this machine.

suite.py runs the phases and writes the report; data_phase.py, train_phase.py,
translate_phase.py and scaling_phase.py measure; machine.py describes the machine and its
matmul peak; process.py runs phases in fresh processes and reads their memory.

`bench` is imported on first use, so that a phase run in a fresh process imports only its
own module (a translation phase does not pay for Lightning).
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "bench":
        from nmt.tasks.bench.suite import bench

        return bench
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
