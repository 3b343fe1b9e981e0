"""Multilingual training (data=bible_multi) on the committed sample: de->en and en->de in one
tiny model; target tags, temperature resampling, per-direction validation BLEU, tgt_lang in
translate and evaluate."""

from __future__ import annotations

import contextlib
import csv
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sacrebleu
import torch

from nmt.data.corpus import read_lines
from nmt.data.dataset import ParallelDataset
from nmt.data.multilingual import tag_line
from nmt.search.strategy import SearchConfig
from nmt.tasks.bench import bench
from nmt.tasks.data import DirectionSizes, build_datamodule, ensure_corpus
from nmt.tasks.hydra_setup import ROOT_DIR, to_dict
from nmt.tasks.train import train
from nmt.translator import Translator
from tests.conftest import SAMPLE_DIR, compose_config

SCRIPTS = ROOT_DIR / "scripts"


def multi_overrides(root: Path, small_en_de: Path) -> list[str]:
    """de->en from the whole sample, en->de from its first 300 pairs (unequal sizes)."""
    directions = (
        f"[{{src_lang:de,tgt_lang:en,dir:'{SAMPLE_DIR}'}},"
        f"{{src_lang:en,tgt_lang:de,dir:'{small_en_de}'}}]"
    )
    return [
        "experiment=smoke",
        "data=bible_multi",
        f"data.dir={root / 'multi'}",
        "data.spm.vocab_size=1000",
        f"data.directions={directions}",
        "data.temperature=2.0",
        "data.valid_lines_per_direction=40",
    ]


def write_small_pair(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", 300), ("valid", 40)):
        for lang in ("de", "en"):
            lines = read_lines(SAMPLE_DIR / f"{split}.{lang}")[:count]
            (directory / f"{split}.{lang}").write_text("".join(x + "\n" for x in lines))
    return directory


@pytest.fixture(scope="module")
def multi_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("multi")
    overrides = multi_overrides(root, write_small_pair(root / "en-de-small"))
    cfg = compose_config("train", root, [*overrides, "trainer.max_steps=30"])
    train(cfg)
    return root / "out" / "checkpoints" / "last.ckpt", overrides


def logged_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def per_direction(line_numbers) -> list[int]:
    """Examples of de->en (lines 0..1999) and en->de (lines 2000..)."""
    return [int((line_numbers < 2000).sum()), int((line_numbers >= 2000).sum())]


def test_directions_are_resampled_by_temperature(tmp_path: Path) -> None:
    overrides = multi_overrides(tmp_path, write_small_pair(tmp_path / "en-de-small"))
    cfg = compose_config("train", tmp_path, overrides)
    sizes = ensure_corpus(cfg)
    assert sizes == DirectionSizes(train=[2000, 300], valid=[40, 40])
    datamodule = build_datamodule(cfg, sizes)
    datamodule.setup("fit")
    datamodule.trainer = None
    sampler = datamodule.train_dataloader().batch_sampler
    dataset = datamodule.train_dataset
    drawn = per_direction(dataset.line_numbers[np.concatenate([np.asarray(b) for b in sampler])])
    filtered, _ = ParallelDataset.kept_by_width(
        dataset.corpus, cfg.data.max_len, cfg.data.max_len_ratio
    )
    natural = np.array(per_direction(filtered.line_numbers))
    # p_k ~ n_k^(1/T), T = 2, of an epoch of sum(n_k) examples (largest remainder rounding).
    expected = natural.sum() * np.sqrt(natural) / np.sqrt(natural).sum()
    assert sum(drawn) == natural.sum() and np.abs(np.array(drawn) - expected).max() < 1
    assert drawn[1] > natural[1]  # the small direction is drawn more often than its size
    shares = [(s.name, s.pairs, s.per_epoch) for s in datamodule.corpus_shares]
    assert shares == [("de-en", natural[0], drawn[0]), ("en-de", natural[1], drawn[1])]
    assert datamodule.valid_segments == [("de-en", 0, 40), ("en-de", 40, 80)]
    # Tags are single pieces of the joint SentencePiece model, at the start of each source.
    tokenizer = datamodule.src_tokenizer
    pieces = tokenizer.id_to_pieces(datamodule.train_dataset[0].src.tolist())
    assert pieces[1] in ("<2en>", "<2de>") and pieces[0] == "▁"
    assert tokenizer.piece_to_id("<2de>") != datamodule.special_ids.unk


def test_validation_bleu_is_logged_per_direction(multi_run) -> None:
    """val/bleu/<direction> equals sacrebleu on that direction's decoded valid lines."""
    ckpt, overrides = multi_run
    run_dir = ckpt.parent.parent
    cfg = compose_config("train", run_dir.parent, [*overrides, "trainer.max_steps=30"])
    # The best checkpoint's weights (its BLEU is not 0, unlike a later one's) and the row of
    # the validation that chose it (one every 10 steps, in order).
    (ckpt,) = (run_dir / "checkpoints").glob("best-*.ckpt")
    step = torch.load(ckpt, weights_only=True)["global_step"]
    rows = [row for row in logged_rows(run_dir) if row.get("val/bleu")]
    last = rows[step // cfg.trainer.val_check_interval - 1]
    assert float(last["val/bleu"]) > 0
    count = cfg.val.bleu_sentences  # decoded per direction
    search = SearchConfig(**to_dict(cfg.val.search))
    hyps, refs = [], []
    for src_lang, tgt_lang, folder in (
        ("de", "en", SAMPLE_DIR),
        ("en", "de", run_dir.parent / "en-de-small"),
    ):
        src = read_lines(folder / f"valid.{src_lang}")[:count]
        ref = read_lines(folder / f"valid.{tgt_lang}")[:count]
        translator = Translator.from_checkpoint(ckpt, tgt_lang=tgt_lang, shortlist=False)
        hyp = [r.text for r in translator.translate(src, search)]
        bleu = sacrebleu.corpus_bleu(hyp, [ref]).score
        assert float(last[f"val/bleu/{src_lang}-{tgt_lang}"]) == pytest.approx(bleu, abs=1e-4)
        hyps, refs = hyps + hyp, refs + ref
    assert float(last["val/bleu"]) == pytest.approx(
        sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-4
    )
    counts = next(row for row in logged_rows(run_dir) if row.get("data/pairs/de-en"))
    assert {key for key, value in counts.items() if key.startswith("data/") and value} == {
        f"data/{figure}/{name}"
        for figure in ("pairs", "per_epoch", "share")
        for name in ("de-en", "en-de")
    }


def test_checkpoint_knows_its_languages_and_translates_both_ways(multi_run) -> None:
    ckpt, _ = multi_run
    section = torch.load(ckpt, weights_only=True)["nmt"]
    assert section["tgt_langs"] == ["de", "en"]
    lines = read_lines(SAMPLE_DIR / "test.de")[:5] + [""]
    search = SearchConfig(beam_size=1)
    to_en = Translator.from_checkpoint(ckpt, tgt_lang="en")
    results = to_en.translate(lines, search)
    assert len(results) == len(lines) and results[-1].text == ""
    # The model sees exactly the training-time source: the tagged line.
    expected = to_en.src_tokenizer.encode([tag_line(lines[0], "en")])[0]
    assert results[0].src_pieces == to_en.src_tokenizer.id_to_pieces(expected)
    assert "<2en>" in results[0].src_pieces
    to_de = Translator.from_checkpoint(ckpt, tgt_lang="de").translate(lines, search)
    assert "<2de>" in to_de[0].src_pieces


def test_translate_refuses_a_missing_or_unknown_tgt_lang(multi_run, tmp_path) -> None:
    ckpt, _ = multi_run
    src = tmp_path / "in.txt"
    src.write_text("Im Anfang\n")
    command = [sys.executable, str(SCRIPTS / "translate.py"), f"ckpt={ckpt}", f"input={src}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"error: ckpt: {ckpt} is multilingual and translates into de, en: no tgt_lang given "
        "(set tgt_lang=one of them)"
    ]
    with pytest.raises(ValueError, match="tgt_lang=fr is not known"):
        Translator.from_checkpoint(ckpt, tgt_lang="fr")


def test_evaluate_scores_a_direction_of_a_multilingual_checkpoint(multi_run, tmp_path) -> None:
    ckpt, _ = multi_run
    src, ref = tmp_path / "src.en", tmp_path / "ref.de"
    src.write_text("".join(x + "\n" for x in read_lines(SAMPLE_DIR / "test.en")[:20]))
    ref.write_text("".join(x + "\n" for x in read_lines(SAMPLE_DIR / "test.de")[:20]))
    hyp = tmp_path / "hyp.de"
    command = [
        sys.executable,
        str(SCRIPTS / "evaluate.py"),
        f"ckpt={ckpt}",
        f"src={src}",
        f"ref={ref}",
        f"hyp_out={hyp}",
        "tgt_lang=de",
        "search.beam_size=1",
        "progress=false",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("BLEU")
    assert len(read_lines(hyp, allow_empty=True)) == 20
    expected = Translator.from_checkpoint(ckpt, tgt_lang="de").translate(
        read_lines(src), SearchConfig(beam_size=1)
    )
    assert read_lines(hyp, allow_empty=True) == [r.text for r in expected]


def test_the_bench_trains_on_a_multilingual_corpus(tmp_path: Path) -> None:
    """task=train of the bench reads the direction sizes, as training does."""
    overrides = multi_overrides(tmp_path, write_small_pair(tmp_path / "en-de-small"))
    bench_args = ["threads=1", "seconds=1", "warmup_steps=1", "matmul_size=64", "matmul_reps=2"]
    cfg = compose_config(
        "bench",
        tmp_path,
        [*overrides, "task=train", "bench.isolate=false", *[f"bench.{a}" for a in bench_args]],
    )
    with contextlib.redirect_stdout(io.StringIO()):
        report = bench(cfg)["train"]
    assert report["steps"] >= 1 and report["tgt_tokens"] > 0
