"""Bad inputs through the command line: one `error: ...` line naming the file, line or key, a
non-zero exit status, never a traceback, and no output file left behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nmt.data.data_config import DataConfig
from nmt.data.datamodule import TranslationDataModule
from nmt.tasks.hydra_setup import ROOT_DIR

SAMPLE = ROOT_DIR / "data" / "sample"


def run(script: str, *args: str, tmp: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT_DIR / "scripts" / f"{script}.py"), *args]
    cmd += [f"paths.data_dir={tmp / 'data'}", f"paths.log_dir={tmp / 'logs'}"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


def error_line(result: subprocess.CompletedProcess, *, only_line: bool = True) -> str:
    """The `error:` line on stderr; with `only_line`, stderr must hold nothing else."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if only_line:
        assert len(lines) == 1, result.stderr[-3000:]
    assert lines[-1].startswith("error: "), result.stderr[-3000:]
    return lines[-1]


@pytest.fixture
def text_input(tmp_path: Path) -> Path:
    src = tmp_path / "in.txt"
    src.write_text("Im Anfang schuf Gott die Himmel und die Erde.\n", encoding="utf-8")
    return src


def translate(tmp_path: Path, ckpt: Path, src: Path, *args: str) -> subprocess.CompletedProcess:
    out = tmp_path / "out.txt"
    return run("translate", f"ckpt={ckpt}", f"input={src}", f"output={out}", *args, tmp=tmp_path)


def future_checkpoint(tiny_checkpoint: Path, path: Path) -> Path:
    checkpoint = torch.load(tiny_checkpoint, weights_only=True)
    checkpoint["nmt"]["format"] = 99
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("truncated", "not a readable checkpoint"),
        ("random", "not a readable checkpoint"),
        ("text", "not a readable checkpoint"),
        ("future", "checkpoint format 99; this version of nmt reads format 1"),
    ],
)
def test_bad_checkpoint(tiny_checkpoint, tmp_path, text_input, case, expected):
    ckpt = tmp_path / "model.ckpt"
    if case == "future":
        future_checkpoint(tiny_checkpoint, ckpt)
    else:
        content = {
            "truncated": tiny_checkpoint.read_bytes()[:5000],
            "random": torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes(),
            "text": b"model: gnmt\n",
        }[case]
        ckpt.write_bytes(content)
    line = error_line(translate(tmp_path, ckpt, text_input))
    assert line.startswith(f"error: ckpt: {ckpt}: ") and expected in line
    assert not (tmp_path / "out.txt").exists()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["foo=3"], "error: config: Could not override 'foo'"),
        (["search.bem_size=3"], "Key 'bem_size' is not in struct"),
        (["search.beam_size=abc"], "error: search.beam_size: Value 'abc' of type 'str' could not"),
        (["+search.bem_size=3"], "error: search.bem_size: Key 'bem_size' not in 'SearchConfig'"),
        (["search=nope"], "error: config: In 'translate': Could not find 'search/nope'"),
        (["search.beam_size=[1"], "error: config: no viable alternative at input '[1'"),
        (["on_invalid_utf8=ignore"], "on_invalid_utf8 must be one of error, replace"),
        (["shortlist=abc"], "error: shortlist must be true or false, got 'abc'"),
    ],
)
def test_bad_translate_config(tiny_checkpoint, tmp_path, text_input, overrides, expected):
    line = error_line(translate(tmp_path, tiny_checkpoint, text_input, *overrides))
    assert expected in line


def test_missing_required_key(tmp_path, text_input):
    result = run("translate", f"input={text_input}", tmp=tmp_path)
    assert "Missing mandatory value: ckpt" in error_line(result)


def test_missing_input(tiny_checkpoint, tmp_path):
    line = error_line(translate(tmp_path, tiny_checkpoint, tmp_path / "nope.txt"))
    assert line == f"error: {tmp_path / 'nope.txt'}: file not found"


def test_invalid_utf8_error_or_replace(tiny_checkpoint, tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"gut\nauch gut\nschlecht \xff\xfe\n\xc3\n")
    line = error_line(translate(tmp_path, tiny_checkpoint, src, "chunk_lines=2", "progress=false"))
    assert line.startswith(f"error: {src}: line 3: not valid UTF-8")
    assert not (tmp_path / "out.txt").exists()
    result = translate(tmp_path, tiny_checkpoint, src, "chunk_lines=2", "on_invalid_utf8=replace")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{src}: replaced 3 invalid UTF-8 sequence(s) with U+FFFD (first on line 3)" in (
        result.stderr
    )
    assert (tmp_path / "out.txt").read_bytes().count(b"\n") == 4


def test_unwritable_output_names_the_path(tiny_checkpoint, tmp_path, text_input):
    """The output's directory is a regular file, so it cannot be created (even as root)."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = blocker / "out.txt"
    result = run(
        "translate", f"ckpt={tiny_checkpoint}", f"input={text_input}", f"output={out}", tmp=tmp_path
    )
    assert error_line(result).startswith(f"error: {out}: ")


def test_evaluate_invalid_utf8_error_or_replace(tmp_path):
    hyp, ref = tmp_path / "hyp.txt", tmp_path / "ref.txt"
    hyp.write_bytes(b"the light\nbad \xe2\x82 bytes\n")
    ref.write_bytes(b"the light\nbad bytes\n")
    line = error_line(run("evaluate", f"hyp={hyp}", f"ref={ref}", tmp=tmp_path))
    assert line.startswith(f"error: {hyp}: line 2: not valid UTF-8")
    result = run("evaluate", f"hyp={hyp}", f"ref={ref}", "on_invalid_utf8=replace", tmp=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{hyp}: replaced 1 invalid UTF-8 sequence(s)" in result.stderr


def text_data(tmp_path: Path, train_src: Path | None = None, **files: Path) -> list[str]:
    paths = {
        "train_src": train_src or SAMPLE / "train.de",
        "train_tgt": SAMPLE / "train.en",
        "valid_src": SAMPLE / "valid.de",
        "valid_tgt": SAMPLE / "valid.en",
        **files,
    }
    return ["experiment=smoke", "data=text", *(f"data.{k}={v}" for k, v in paths.items())]


def test_train_line_count_mismatch(tmp_path):
    short = tmp_path / "train.de"
    short.write_bytes(b"".join((SAMPLE / "train.de").read_bytes().splitlines(True)[:-1]))
    line = error_line(run("train", *text_data(tmp_path, short), tmp=tmp_path), only_line=False)
    assert line == (
        f"error: line counts differ: {short} has 1999 lines, {SAMPLE / 'train.en'} has 2000 lines"
    )


def test_train_invalid_utf8_stops_before_sentencepiece(tmp_path):
    bad = tmp_path / "train.de"
    bad.write_bytes((SAMPLE / "train.de").read_bytes().replace(b"Gott", b"G\xf6tt", 1))
    result = run("train", *text_data(tmp_path, bad), tmp=tmp_path)
    assert error_line(result, only_line=False).startswith(f"error: {bad}: line ")
    assert "training SentencePiece" not in result.stderr


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["model.encoder.hiden_size=3"], "Key 'hiden_size' is not in struct"),
        (["optim.lr=abc"], "error: optim.lr: Value 'abc' of type 'str' could not be converted"),
        (["+model.encoder.hiden_size=3"], "error: model.encoder.hiden_size: Key 'hiden_size' not"),
        (["optim.lr=-1"], "error: optim.lr must be > 0, got -1"),
        (
            ["trainer.max_steps=abc"],
            "error: trainer.max_steps: Value 'abc' of type 'str' could not be converted to Integer",
        ),
        (
            ["trainer=ddp_cpu", "trainer.val_check_interval=often"],
            "error: trainer.val_check_interval: Value 'often' of type 'str' is incompatible",
        ),
        (
            ["trainer.enable_progress_bar=maybe"],
            "error: trainer.enable_progress_bar: Value 'maybe' is not a valid bool (type str)",
        ),
    ],
)
def test_train_bad_config(tmp_path, overrides, expected):
    result = run("train", "experiment=smoke", *overrides, tmp=tmp_path)
    assert expected in error_line(result)  # checked before any data is read: nothing else


def test_train_empty_after_filtering_names_the_filter_keys(tmp_path):
    result = run("train", *text_data(tmp_path), "data.max_len=1", tmp=tmp_path)
    line = error_line(result, only_line=False)
    assert "no training pairs left after filtering" in line
    assert "data.max_len=1" in line and "data.max_len_ratio=" in line


def test_train_from_checkpoint_with_other_tokenizer(tiny_checkpoint, tmp_path):
    """Fine-tuning on data whose SentencePiece model differs from the checkpoint's."""
    result = run(
        "train", *text_data(tmp_path), "data.spm.vocab_size=300", f"ckpt_path={tiny_checkpoint}",
        tmp=tmp_path,
    )  # fmt: skip
    line = error_line(result, only_line=False)
    assert line.startswith(f"error: ckpt_path: {tiny_checkpoint}: trained with another src")


def test_train_from_checkpoint_of_another_format(tiny_checkpoint, tmp_path):
    ckpt = future_checkpoint(tiny_checkpoint, tmp_path / "future.ckpt")
    result = run("train", *text_data(tmp_path), f"ckpt_path={ckpt}", tmp=tmp_path)
    assert "checkpoint format 99" in error_line(result, only_line=False)


def test_train_replace_reads_a_cleaned_copy(tmp_path):
    """With data.on_invalid_utf8=replace, SentencePiece and the arrays see U+FFFD."""
    bad = tmp_path / "train.de"
    bad.write_bytes((SAMPLE / "train.de").read_bytes().replace(b"Gott", b"G\xf6tt", 1))
    config = DataConfig(
        bad,
        SAMPLE / "train.en",
        SAMPLE / "valid.de",
        SAMPLE / "valid.en",
        work_dir=tmp_path / "work",
        spm={"vocab_size": 200},
        on_invalid_utf8="replace",
    )
    datamodule = TranslationDataModule(config)
    datamodule.setup("fit")
    clean = datamodule._checked_sides()["train"][0][0].path
    assert clean != bad and "G\ufffdtt" in clean.read_text(encoding="utf-8")
    assert len(datamodule.train_dataset) > 0
