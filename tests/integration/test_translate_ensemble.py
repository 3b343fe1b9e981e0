"""Ensembles of real tiny checkpoints: ckpt=[A,B] through Translator, translate and evaluate.

The second model is the session's tiny checkpoint with noise added to every weight (and a
smaller shortlist): a different model over the same vocabularies, made in a second.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nmt.data.corpus import read_lines
from nmt.data.shortlist import Shortlist
from nmt.search.strategy import SearchConfig
from nmt.tasks.hydra_setup import ROOT_DIR
from nmt.tasks.translate import format_nbest
from nmt.tokenizer import SpmTokenizer
from nmt.translator import Translator

SAMPLE = ROOT_DIR / "data" / "sample"
# Short length limits: the tiny model often runs to the limit, and these tests check agreement.
GREEDY = SearchConfig(beam_size=1, len_alpha=0.0, cov_beta=0.0, max_len_a=0.5, max_len_b=4)
BEAM = SearchConfig(beam_size=3, max_len_a=0.5, max_len_b=4)


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return read_lines(SAMPLE / "test.de")[:12]


def _save_variant(source: Path, target: Path, change) -> Path:
    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    change(checkpoint)
    torch.save(checkpoint, target)
    return target


@pytest.fixture(scope="module")
def other_checkpoint(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with every weight perturbed and another shortlist (shifted ids, halved)."""

    def perturb(checkpoint: dict) -> None:
        gen = torch.Generator().manual_seed(7)
        for key, value in checkpoint["state_dict"].items():
            if value.is_floating_point() and value.numel() > 1:
                noise = torch.randn(value.shape, generator=gen, dtype=value.dtype)
                checkpoint["state_dict"][key] = value + 0.5 * value.std() * noise
        shortlist = checkpoint["nmt"]["shortlist"]
        candidates, size = shortlist["candidates"], shortlist["tgt_vocab_size"]
        shifted = torch.where(candidates >= 0, (candidates + 7) % size, candidates)
        shortlist["candidates"] = shifted[:, : candidates.shape[1] // 2].clone()
        shortlist["frequent"] = shortlist["frequent"][:5].clone()

    path = tmp_path_factory.mktemp("ensemble") / "other.ckpt"
    return _save_variant(tiny_checkpoint, path, perturb)


def _token_ids(translator: Translator, pieces: list[str]) -> list[int]:
    return [translator.tgt_tokenizer.piece_to_id(piece) for piece in pieces]


def test_two_copies_of_a_checkpoint_translate_as_the_checkpoint(tiny_checkpoint, lines):
    single = Translator.from_checkpoint(tiny_checkpoint)
    pair = Translator.from_checkpoint([tiny_checkpoint, tiny_checkpoint])
    assert len(pair.models) == 2 and pair.shortlists is not None
    for search in (GREEDY, BEAM):
        expected = single.translate(lines, search, nbest=2 if search.beam_size > 1 else 1)
        actual = pair.translate(lines, search, nbest=2 if search.beam_size > 1 else 1)
        for got, want in zip(actual, expected, strict=True):
            assert [text for text, _ in got.nbest] == [text for text, _ in want.nbest]
            assert [s for _, s in got.nbest] == pytest.approx([s for _, s in want.nbest], abs=1e-4)


def _slow_greedy(translator: Translator, src_ids: list[int]) -> tuple[list[int], float]:
    """Greedy over the mean of the models' full-vocabulary probabilities, one sentence, each
    model stepped on its own: no batching, no ensemble state, no search code."""
    special = translator.special
    src, lengths = torch.tensor([src_ids]), torch.tensor([len(src_ids)])
    states = [model.init_state(model.encode(src, lengths)) for model in translator.models]
    prev, tokens, score = torch.tensor([special.bos]), [], 0.0
    for _ in range(math.floor(GREEDY.max_len_a * len(src_ids) + GREEDY.max_len_b)):
        steps = [
            model.step(prev, state) for model, state in zip(translator.models, states, strict=True)
        ]
        states = [step[2] for step in steps]
        probs = torch.stack([step[0][0].double().exp() for step in steps]).mean(dim=0)  # (V,)
        token = int(probs.argmax())
        score += math.log(float(probs[token]))
        if token == special.eos:
            break
        tokens.append(token)
        prev = torch.tensor([token])
    return tokens, score


@torch.inference_mode()
def test_ensemble_of_two_models_equals_a_slow_step_by_step_reference(
    tiny_checkpoint, other_checkpoint, lines
):
    pair = Translator.from_checkpoint([tiny_checkpoint, other_checkpoint], shortlist=False)
    results = pair.translate(lines, GREEDY, batch_tokens=300)  # several padded batches
    ids = pair.src_tokenizer.encode(lines)
    for src_ids, result in zip(ids, results, strict=True):
        tokens, score = _slow_greedy(pair, src_ids)
        assert _token_ids(pair, result.tgt_pieces) == tokens
        assert result.score == pytest.approx(score, rel=1e-5, abs=1e-4)
    # The two members score differently, so the reference is not just one of them.
    for path in (tiny_checkpoint, other_checkpoint):
        alone = Translator.from_checkpoint(path, shortlist=False).translate(lines, GREEDY)
        assert any(abs(a.score - r.score) > 1e-2 for a, r in zip(alone, results, strict=True))


def test_beam_ensemble_translates_a_line_the_same_in_any_batch(
    tiny_checkpoint, other_checkpoint, lines
):
    # Sentences finish at different steps and leave the batch: every member's state must
    # drop and reorder the same rows.
    pair = Translator.from_checkpoint([tiny_checkpoint, other_checkpoint])
    batched = pair.translate(lines, BEAM, nbest=3)
    for line, result in zip(lines[:6], batched, strict=False):
        alone = pair.translate([line], BEAM, nbest=3)[0]
        assert [text for text, _ in alone.nbest] == [text for text, _ in result.nbest]
        assert [s for _, s in alone.nbest] == pytest.approx([s for _, s in result.nbest], abs=1e-4)


def test_shortlist_is_the_union_of_the_members_or_none(
    tiny_checkpoint, other_checkpoint, tmp_path, lines
):
    pair = Translator.from_checkpoint([tiny_checkpoint, other_checkpoint])
    src_ids = pair.src_tokenizer.encode(lines[:4])
    src = torch.zeros(4, max(map(len, src_ids)), dtype=torch.long)
    for row, x in enumerate(src_ids):
        src[row, : len(x)] = torch.tensor(x)
    lengths = torch.tensor([len(x) for x in src_ids])
    always = (pair.special.bos, pair.special.eos, pair.special.unk)
    tables = [
        Shortlist.from_dict(torch.load(p, weights_only=True)["nmt"]["shortlist"])
        for p in (tiny_checkpoint, other_checkpoint)
    ]
    masks = [table.allowed(src, lengths, always) for table in tables]
    assert bool((masks[0] & ~masks[1]).any()) and bool((masks[1] & ~masks[0]).any())
    assert torch.equal(pair.allowed(src, lengths, always), masks[0] | masks[1])
    # A member without a shortlist: the ensemble scores the whole vocabulary.
    bare = _save_variant(
        other_checkpoint, tmp_path / "bare.ckpt", lambda c: c["nmt"].pop("shortlist")
    )
    without = Translator.from_checkpoint([tiny_checkpoint, bare])
    assert without.shortlists is None
    full = Translator.from_checkpoint([tiny_checkpoint, other_checkpoint], shortlist=False)
    assert [r.text for r in without.translate(lines, BEAM)] == [
        r.text for r in full.translate(lines, BEAM)
    ]


def test_int8_quantizes_every_member(tiny_checkpoint, other_checkpoint, lines):
    pair = Translator.from_checkpoint([tiny_checkpoint, other_checkpoint], quantize="int8")
    for model in pair.models:
        assert isinstance(model.output_proj, torch.ao.nn.quantized.dynamic.Linear)
    assert len(pair.translate(lines[:5], BEAM)) == 5


@pytest.fixture(scope="module")
def foreign_checkpoint(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint with another (real) SentencePiece model on both sides."""
    root = tmp_path_factory.mktemp("foreign")
    files = [SAMPLE / "train.de", SAMPLE / "train.en"]
    tokenizer = SpmTokenizer.train(files, root / "spm.model", vocab_size=120, num_threads=1)
    model_bytes = (root / "spm.model").read_bytes()
    assert tokenizer.vocab_size > 0

    def swap(checkpoint: dict) -> None:
        checkpoint["nmt"]["src_spm"] = checkpoint["nmt"]["tgt_spm"] = model_bytes

    return _save_variant(tiny_checkpoint, root / "foreign.ckpt", swap)


def test_different_vocabularies_are_refused_naming_both_files(
    tiny_checkpoint, foreign_checkpoint, tmp_path
):
    with pytest.raises(ValueError) as err:
        Translator.from_checkpoint([tiny_checkpoint, foreign_checkpoint])
    assert str(err.value) == (
        f"ckpt: {foreign_checkpoint} and {tiny_checkpoint} have a different target "
        "SentencePiece model; the models of an ensemble must share their vocabularies"
    )

    def swap_ids(checkpoint: dict) -> None:
        ids = checkpoint["hyper_parameters"]["special_ids"]
        ids["bos"], ids["eos"] = ids["eos"], ids["bos"]

    swapped = _save_variant(tiny_checkpoint, tmp_path / "ids.ckpt", swap_ids)
    with pytest.raises(ValueError, match=rf"ckpt: {swapped} and .* different special ids"):
        Translator.from_checkpoint([tiny_checkpoint, swapped])
    # The command line: one line, exit status 1, no output file.
    src, out = tmp_path / "in.de", tmp_path / "out.en"
    src.write_text("Im Anfang schuf Gott die Himmel und die Erde.\n", encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT_DIR / "scripts" / "translate.py"),
            f"ckpt=[{tiny_checkpoint},{foreign_checkpoint}]",
            f"input={src}",
            f"output={out}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: ckpt: {foreign_checkpoint} and {tiny_checkpoint} have a different target "
        "SentencePiece model; the models of an ensemble must share their vocabularies"
    ]
    assert not out.exists()


def test_translate_and_evaluate_take_a_list_of_checkpoints(
    tiny_checkpoint, other_checkpoint, tmp_path
):
    src = tmp_path / "in.de"
    src.write_text("".join(line + "\n" for line in read_lines(SAMPLE / "test.de")[:6]), "utf-8")
    ckpts = f"ckpt=[{tiny_checkpoint},{other_checkpoint}]"
    ref = tmp_path / "ref.en"
    ref.write_text("".join(line + "\n" for line in read_lines(SAMPLE / "test.en")[:6]), "utf-8")
    out, report = tmp_path / "out.en", tmp_path / "report.json"
    scripts = ROOT_DIR / "scripts"
    common = ["search.beam_size=3", "search.max_len_a=0.5", "search.max_len_b=4", "progress=false"]
    translate = [str(scripts / "translate.py"), ckpts, f"input={src}", f"output={out}", "nbest=2"]
    translate += common
    evaluate = [str(scripts / "evaluate.py"), ckpts, f"src={src}", f"ref={ref}"]
    evaluate += [f"output_json={report}", f"hyp_out={tmp_path / 'hyp.en'}", *common]
    for args in (translate, evaluate):
        done = subprocess.run([sys.executable, *args], capture_output=True, timeout=300)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
    expected = Translator.from_checkpoint([tiny_checkpoint, other_checkpoint]).translate(
        read_lines(src), BEAM, batch_tokens=6000, nbest=2
    )
    # The n-best scores tell an ensemble from its first model even where their texts agree.
    assert read_lines(out, allow_empty=True) == format_nbest(expected)
    assert read_lines(tmp_path / "hyp.en", allow_empty=True) == [r.text for r in expected]
    assert json.loads(report.read_text())["ckpt"] == [str(tiny_checkpoint), str(other_checkpoint)]
