"""`curves` task: validation BLEU against training minutes for several runs, as a table and a PNG.

Each run is a training output directory (`outputs/train/<run_name>/<time>`); its
`csv/metrics.csv` holds, per validation, the step, `val/ppl`, `val/bleu` and `time/elapsed_min`
(the `WallClock` callback); a run of another toolkit may give the same columns without `val/ppl`
(scripts/onmt_curve.sh writes one for OpenNMT-py). The table gives, per run, the validations,
the step at which the run left the early loss plateau (the first validation with perplexity
below `plateau_ppl`), and the best validation BLEU with its step and minute.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from nmt.utils.plot import plot_curves


@dataclass(frozen=True)
class Validation:
    """One validation of a run."""

    step: int
    minutes: float
    ppl: float  # nan where the run logged none
    bleu: float


def read_validations(run_dir: str | Path) -> list[Validation]:
    """The validations a run logged during its fit, in step order."""
    path = Path(run_dir) / "csv" / "metrics.csv"
    if not path.is_file():
        raise ValueError(f"runs: {path}: file not found (not a training run directory?)")
    by_step: dict[int, dict[str, str]] = {}  # a step's logged values, from however many rows
    with open(path, encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            by_step.setdefault(int(row["step"]), {}).update({k: v for k, v in row.items() if v})
    return [
        Validation(
            step, float(r["time/elapsed_min"]), float(r.get("val/ppl", "nan")), float(r["val/bleu"])
        )
        for step, r in sorted(by_step.items())
        if all(r.get(key) for key in ("time/elapsed_min", "val/bleu"))
    ]


def summary_line(label: str, points: list[Validation], plateau_ppl: float) -> str:
    """`label: N validations, plateau left at step S, best BLEU B (step, minute)`."""
    if not points:
        return f"{label}: no validation with time/elapsed_min"
    left = next((p.step for p in points if p.ppl < plateau_ppl), None)
    best = max(points, key=lambda p: p.bleu)
    if all(math.isnan(p.ppl) for p in points):
        plateau = "no val/ppl logged"
    else:
        left_at = f"step {left}" if left is not None else "never"
        plateau = f"plateau (val ppl < {plateau_ppl:g}) left at {left_at}"
    return (
        f"{label}: {len(points)} validations to step {points[-1].step} "
        f"({points[-1].minutes:.1f} min); {plateau}; "
        f"best valid BLEU {best.bleu:.2f} at step {best.step} ({best.minutes:.1f} min)"
    )


def run_overrides(run_dir: str | Path) -> list[str]:
    """The run's command-line overrides (Hydra's `.hydra/overrides.yaml`), `hydra.*` left out."""
    path = Path(run_dir) / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    return [str(o) for o in OmegaConf.load(path) if not str(o).startswith("hydra.")]


def run_labels(runs: list[str]) -> list[str]:
    """Label each run by the overrides that set it apart from the others (else its directory)."""
    overrides = [run_overrides(run) for run in runs]
    shared = set.intersection(*map(set, overrides)) if len(runs) > 1 else set()
    own = [[o for o in found if o not in shared] for found in overrides]
    return [", ".join(mine) or str(run) for mine, run in zip(own, runs, strict=True)]


def curves(cfg: DictConfig) -> None:
    """Print one summary line per run of `runs` (run dirs) and plot BLEU against minutes."""
    if not cfg.runs:
        raise ValueError("runs: give at least one training run directory (runs=[DIR,...])")
    if cfg.labels and len(cfg.labels) != len(cfg.runs):
        raise ValueError(f"labels: {len(cfg.labels)} labels for {len(cfg.runs)} runs")
    labels = [str(x) for x in cfg.labels] or run_labels([str(run) for run in cfg.runs])
    series = {label: read_validations(run) for label, run in zip(labels, cfg.runs, strict=True)}
    for label, points in series.items():
        print(summary_line(label, points, cfg.plateau_ppl))
    if cfg.output:
        xy = {
            label: ([p.minutes for p in pts], [p.bleu for p in pts])
            for label, pts in series.items()
        }
        plot_curves(xy, Path(cfg.output), title=cfg.title)
        print(f"plot: {cfg.output}")
