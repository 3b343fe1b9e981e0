"""Several corpora in one run (data=mix): counts logged at the start, BLEU per corpus, errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from nmt.data.corpus import read_lines
from nmt.tasks.train import train
from tests.conftest import SAMPLE_DIR, compose_config
from tests.integration.test_bad_inputs import error_line, run


def write_part(directory: Path, split: str, lines: slice) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for lang in ("de", "en"):
        path = directory / f"{split}.{lang}"
        path.write_text(
            "".join(x + "\n" for x in read_lines(SAMPLE_DIR / f"{split}.{lang}")[lines])
        )
        out.append(path)
    return out[0], out[1]


def corpora_override(root: Path) -> str:
    """Corpus `old` (sample lines 0..1499, weight 3) and `new` (1500..1999, weight 1)."""
    entries = []
    for name, weight, train_lines, valid_lines in (
        ("old", 3, slice(0, 1500), slice(0, 30)),
        ("new", 1, slice(1500, 2000), slice(30, 60)),
    ):
        src, tgt = write_part(root / name, "train", train_lines)
        valid_src, valid_tgt = write_part(root / name, "valid", valid_lines)
        entries.append(
            f"{{src:'{src}',tgt:'{tgt}',weight:{weight},name:{name},"
            f"valid_src:'{valid_src}',valid_tgt:'{valid_tgt}'}}"
        )
    return f"data.corpora=[{','.join(entries)}]"


def test_mixed_run_logs_counts_and_bleu_per_corpus(tmp_path: Path) -> None:
    overrides = [
        "experiment=smoke",
        "data=mix",
        corpora_override(tmp_path),
        "data.valid_src=null",
        "data.valid_tgt=null",
        "data.spm.vocab_size=1000",
        f"data.work_dir={tmp_path / 'work'}",
    ]
    result = train(compose_config("train", tmp_path, overrides))
    with open(tmp_path / "out" / "csv" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    counts = next(row for row in rows if row.get("data/pairs/old"))
    pairs = {name: int(float(counts[f"data/pairs/{name}"])) for name in ("old", "new")}
    assert 1400 < pairs["old"] <= 1500 and 450 < pairs["new"] <= 500  # after length filtering
    total = sum(pairs.values())
    expected = {"old": round(total * 3 / 4), "new": total - round(total * 3 / 4)}
    for name in ("old", "new"):
        assert float(counts[f"data/per_epoch/{name}"]) == expected[name]
        assert float(counts[f"data/share/{name}"]) == pytest.approx(expected[name] / total)
    validations = [row for row in rows if row.get("val/bleu")]
    assert validations and all(row["val/bleu/old"] and row["val/bleu/new"] for row in validations)
    assert result.valid_bleu is not None  # the overall val/bleu still selects the checkpoint
    assert "best-step" in result.best_checkpoint or "final-step" in result.best_checkpoint


GOOD = "{src:'A',tgt:'B',weight:1}"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            "{src:'A',tgt:'B',weight:abc}",
            "data.corpora[1].weight must be a positive number, got 'abc'",
        ),
        (
            "{src:'A',tgt:'B',wieght:1}",
            "data.corpora[1].wieght: unknown key (known: src, tgt, weight",
        ),
    ],
)
def test_bad_corpora_stop_with_one_line(tmp_path: Path, entry: str, expected: str) -> None:
    corpora = f"data.corpora=[{GOOD},{entry}]"
    result = run("train", "experiment=smoke", "data=mix", corpora, tmp=tmp_path)
    assert error_line(result).startswith(f"error: {expected}")


def test_missing_corpus_file_is_named(tmp_path: Path) -> None:
    src, tgt = write_part(tmp_path / "a", "train", slice(0, 10))
    corpora = f"[{{src:'{src}',tgt:'{tgt}'}},{{src:'{tmp_path / 'nope.de'}',tgt:'{tgt}'}}]"
    args = ["experiment=smoke", "data=mix", f"data.corpora={corpora}"]
    args += [
        f"data.valid_src={SAMPLE_DIR / 'valid.de'}",
        f"data.valid_tgt={SAMPLE_DIR / 'valid.en'}",
    ]
    line = error_line(run("train", *args, tmp=tmp_path), only_line=False)
    assert line == f"error: data.corpora[1].src: {tmp_path / 'nope.de'}: file not found"
