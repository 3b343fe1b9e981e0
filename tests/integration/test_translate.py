"""translate: one output line per input line, in order, whatever the input; n-best, alignments,
plots, int8, error messages. Uses the session's tiny trained checkpoint."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nmt.data.corpus import read_lines, split_lines
from nmt.search.strategy import SearchConfig
from nmt.tasks.hydra_setup import ROOT_DIR
from nmt.translator import Translator

NASTY = [
    "Im Anfang schuf Gott die Himmel und die Erde.",
    "",
    "   \t ",
    "Und Gott sprach:\r Es werde Licht!",
    "Zeile mit\u2028Zeilentrenner und\u0085NEL und\u2029Absatz",
    "Emoji 😀🙏 und Kombinationen 👩‍👩‍👧",
    "שלום עולם مرحبا بالعالم",
    "中文字符和日本語のテキスト",
    "vertikal\x0bTab\x0cFormfeed\x1cFS\x1dGS\x1eRS",
    " ".join(["und Gott sah das Licht, dass es gut war"] * 40),
    "Und es ward Abend und es ward Morgen: ein Tag.",
]
SCRIPT = str(ROOT_DIR / "scripts" / "translate.py")


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, SCRIPT, *args], input=stdin, capture_output=True, timeout=300, check=False
    )


def write_nasty(path) -> None:
    path.write_bytes("".join(line + "\n" for line in NASTY).encode("utf-8"))


def test_nasty_file_keeps_every_line_in_order(tiny_checkpoint, tmp_path):
    src, out = tmp_path / "in.txt", tmp_path / "out.txt"
    write_nasty(src)
    result = run(f"ckpt={tiny_checkpoint}", f"input={src}", f"output={out}", "max_src_tokens=30")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    hyps = read_lines(out, allow_empty=True)
    assert len(hyps) == len(NASTY)
    assert hyps[1] == "" and hyps[2] == ""
    assert b"1 input line(s) longer than max_src_tokens=30" in result.stderr
    # Order: each output equals the translation of its input line alone.
    translator = Translator.from_checkpoint(tiny_checkpoint, max_src_tokens=30)
    search = SearchConfig()
    for line, hyp in zip(NASTY, hyps, strict=True):
        assert translator.translate([line], search)[0].text == hyp


def test_stdin_to_stdout_equals_file_mode(tiny_checkpoint, tmp_path):
    src, out = tmp_path / "in.txt", tmp_path / "out.txt"
    write_nasty(src)
    assert run(f"ckpt={tiny_checkpoint}", f"input={src}", f"output={out}").returncode == 0
    result = run(f"ckpt={tiny_checkpoint}", stdin=src.read_bytes())
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert split_lines(result.stdout.decode("utf-8")) == read_lines(out, allow_empty=True)


def test_empty_input_gives_empty_output(tiny_checkpoint, tmp_path):
    src, out = tmp_path / "in.txt", tmp_path / "out.txt"
    src.write_bytes(b"")
    assert run(f"ckpt={tiny_checkpoint}", f"input={src}", f"output={out}").returncode == 0
    assert out.read_bytes() == b""


@pytest.mark.parametrize("nbest", [0, 3])
def test_nbest_outside_one_to_beam_size_is_refused(tiny_checkpoint, nbest):
    translator = Translator.from_checkpoint(tiny_checkpoint)
    with pytest.raises(ValueError, match=rf"nbest={nbest} must be in \[1, search.beam_size=2\]"):
        translator.translate(["Und Gott sprach."], SearchConfig(beam_size=2), nbest=nbest)


def test_nbest_alignment_and_plot(tiny_checkpoint, tmp_path):
    src, out, plots = tmp_path / "in.txt", tmp_path / "out.tsv", tmp_path / "plots"
    src.write_text("Im Anfang schuf Gott die Himmel und die Erde.\n\nUnd Gott sprach.\n")
    result = run(
        f"ckpt={tiny_checkpoint}",
        f"input={src}",
        f"output={out}",
        "nbest=3",
        "align=true",
        "plot.lines=[0]",
        f"plot.dir={plots}",
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    rows = [line.split("\t") for line in read_lines(out)]
    assert [(int(r[0]), int(r[1])) for r in rows] == [(i, k) for i in range(3) for k in range(3)]
    for line in (0, 2):
        scores = [float(r[2]) for r in rows if int(r[0]) == line]
        assert scores == sorted(scores, reverse=True)
    alignments = read_lines(f"{out}.align", allow_empty=True)
    assert len(alignments) == 3 and alignments[1] == ""
    for pair in alignments[0].split():
        src_index, tgt_index = map(int, pair.split("-"))
        assert 0 <= src_index < 20 and tgt_index >= 0
    assert (plots / "line0.png").read_bytes()[:4] == b"\x89PNG"


def padded_batch(translator: Translator, src: list[str], tgt: list[str]):
    """Source ids (B,S), lengths (B,), target inputs BOS + pieces (B,T) and their mask (B,T)."""
    import torch

    bos, pad = translator.special.bos, translator.special.pad
    src_ids = translator.src_tokenizer.encode(src)
    tgt_ids = translator.tgt_tokenizer.encode(tgt)
    lengths = torch.tensor([len(x) for x in src_ids])
    src_batch = torch.full((len(src), int(lengths.max())), pad)
    tgt_in = torch.full((len(tgt), max(map(len, tgt_ids)) + 1), pad)
    for row, (x, y) in enumerate(zip(src_ids, tgt_ids, strict=True)):
        src_batch[row, : len(x)] = torch.tensor(x)
        tgt_in[row, : len(y) + 1] = torch.tensor([bos, *y])
    return src_batch, lengths, tgt_in, tgt_in != pad


def relative_error(expected, actual) -> float:
    return float((actual - expected).norm() / expected.norm())


def test_int8_outputs_close_to_fp32(tiny_checkpoint):
    # The tiny model's BLEU is near 0 in both precisions, so BLEU cannot tell them apart.
    # Compared instead: the encoder outputs, and the log-probabilities (centred per position)
    # the model gives the reference translations, teacher-forced. Tolerance: 1 % relative
    # error (int8 measures about 0.1 % and 0.3 %; feeding the encoder other sentences
    # changes its outputs by about 3 %).
    import torch

    sample = ROOT_DIR / "data" / "sample"
    src, refs = read_lines(sample / "test.de")[:40], read_lines(sample / "test.en")[:40]
    fp32 = Translator.from_checkpoint(tiny_checkpoint)
    int8 = Translator.from_checkpoint(tiny_checkpoint, quantize="int8")
    src_batch, lengths, tgt_in, tgt_mask = padded_batch(fp32, src, refs)
    src_mask = torch.arange(src_batch.size(1)) < lengths[:, None]  # (B,S)
    enc, log_probs = [], []
    with torch.no_grad():
        for model in (fp32.models[0], int8.models[0]):
            enc.append(model.encode(src_batch, lengths).enc_out[src_mask])  # (N,D)
            lp = torch.log_softmax(model(src_batch, lengths, tgt_in).float(), dim=-1)  # (B,T,V)
            log_probs.append((lp - lp.mean(-1, keepdim=True))[tgt_mask])  # (N,V)
    for name, (expected, actual) in {"encoder": enc, "log_probs": log_probs}.items():
        error = relative_error(expected, actual)
        assert 0 < error <= 0.01, (name, error)  # 0: nothing was quantised


@pytest.mark.parametrize("content", [None, b"not a checkpoint", b"PK\x03\x04garbage"])
def test_bad_checkpoint_is_one_line_error(tmp_path, content):
    ckpt = tmp_path / "model.ckpt"
    if content is not None:
        ckpt.write_bytes(content)
    src = tmp_path / "in.txt"
    src.write_text("Hallo\n")
    result = run(f"ckpt={ckpt}", f"input={src}", f"output={tmp_path / 'out.txt'}")
    assert result.returncode != 0
    last = result.stderr.decode().strip().splitlines()[-1]
    assert last.startswith(f"error: ckpt: {ckpt}: ")
    assert not (tmp_path / "out.txt").exists()


def test_bad_utf8_input_names_the_line(tiny_checkpoint, tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"gut\nauch gut\nschlecht \xff\n")
    result = run(f"ckpt={tiny_checkpoint}", f"input={src}", f"output={tmp_path / 'o.txt'}")
    assert result.returncode != 0
    assert f"{src}: line 3: not valid UTF-8" in result.stderr.decode()


def test_average_of_identical_checkpoints_is_the_same_model(tiny_checkpoint, tmp_path):
    import torch

    out = tmp_path / "avg.ckpt"
    script = str(ROOT_DIR / "scripts" / "average_checkpoints.py")
    cmd = [sys.executable, script, f"ckpts=[{tiny_checkpoint},{tiny_checkpoint}]", f"output={out}"]
    result = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    original = torch.load(tiny_checkpoint, weights_only=True)["state_dict"]
    averaged = torch.load(out, weights_only=True)["state_dict"]
    assert original.keys() == averaged.keys()
    for key in original:
        torch.testing.assert_close(averaged[key], original[key], rtol=0, atol=0)
    lines = read_lines(ROOT_DIR / "data" / "sample" / "valid.de")[:20]
    search = SearchConfig(beam_size=2)
    expected = [
        t.text for t in Translator.from_checkpoint(tiny_checkpoint).translate(lines, search)
    ]
    assert [t.text for t in Translator.from_checkpoint(out).translate(lines, search)] == expected


def test_average_is_the_mean(tiny_checkpoint, tmp_path):
    import torch

    from nmt.training.averaging import average_checkpoints

    other = tmp_path / "other.ckpt"
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    first = {k: v.clone() for k, v in ckpt["state_dict"].items()}
    ckpt["state_dict"] = {k: v * 3 if v.is_floating_point() else v for k, v in first.items()}
    torch.save(ckpt, other)
    averaged = average_checkpoints([tiny_checkpoint, other])["state_dict"]
    for key, value in first.items():
        expected = value * 2 if value.is_floating_point() else value
        torch.testing.assert_close(averaged[key], expected)


def test_translator_matches_the_lightning_module(tiny_checkpoint):
    import torch

    from nmt.training.module import TranslationModule

    module = TranslationModule.load_from_checkpoint(tiny_checkpoint, map_location="cpu").eval()
    translator = Translator.from_checkpoint(tiny_checkpoint, shortlist=False)  # full vocabulary
    lines = read_lines(ROOT_DIR / "data" / "sample" / "valid.de")[:8]
    ids = translator.src_tokenizer.encode(lines)
    lengths = torch.tensor([len(x) for x in ids])
    src = torch.zeros(len(ids), int(lengths.max()), dtype=torch.long)
    for row, seq in enumerate(ids):
        src[row, : len(seq)] = torch.tensor(seq)
    with torch.no_grad():
        expected = translator.tgt_tokenizer.decode(module(src, lengths))
    greedy = SearchConfig(beam_size=1, len_alpha=0.0, cov_beta=0.0)
    assert [t.text for t in translator.translate(lines, greedy)] == expected


def test_checkpoint_shortlist_bounds_every_output(tiny_checkpoint, tmp_path):
    import torch

    from nmt.checkpoint import load_checkpoint
    from nmt.data.shortlist import Shortlist

    section = load_checkpoint(tiny_checkpoint)["nmt"]
    table = Shortlist.from_dict(section["shortlist"])
    translator = Translator.from_checkpoint(tiny_checkpoint)
    assert translator.shortlists is not None
    assert table.tgt_vocab_size == translator.tgt_tokenizer.vocab_size
    assert table.candidates.shape == (translator.src_tokenizer.vocab_size, 50)  # data.shortlist
    lines = read_lines(ROOT_DIR / "data" / "sample" / "test.de")[:40]
    results = translator.translate(lines, SearchConfig())
    special = translator.special
    produced = 0
    for line, result in zip(lines, results, strict=True):
        src = torch.tensor([translator.src_tokenizer.encode([line])[0]])
        allowed = table.allowed(src, torch.tensor([src.shape[1]]), (special.eos, special.unk))[0]
        ids = [translator.tgt_tokenizer.piece_to_id(p) for p in result.tgt_pieces]
        assert all(bool(allowed[i]) for i in ids), line
        produced += len(ids)
    assert produced > 0
    # shortlist=false on the command line decodes over the whole vocabulary
    src_file = tmp_path / "in.de"
    src_file.write_text("".join(line + "\n" for line in lines[:10]), encoding="utf-8")
    out = tmp_path / "out.en"
    done = run(f"ckpt={tiny_checkpoint}", f"input={src_file}", f"output={out}", "shortlist=false")
    assert done.returncode == 0, done.stderr
    full = Translator.from_checkpoint(tiny_checkpoint, shortlist=False).translate(
        lines[:10], SearchConfig()
    )
    assert read_lines(out) == [t.text for t in full]


def test_tab_in_a_candidate_cannot_shift_nbest_columns():
    from nmt.tasks.translate import format_nbest
    from nmt.translator import Translation

    nbest = [("a\tb", -1.0), ("\t", -2.5), ("c d", -3.0)]
    result = Translation("a\tb", -1.0, ["x"], nbest, ["a"], None, False)
    rows = [row.split("\t") for row in format_nbest([result], first_line=7)]
    assert rows == [
        ["7", "0", "-1.0000", "a b"],
        ["7", "1", "-2.5000", " "],
        ["7", "2", "-3.0000", "c d"],
    ]


def test_translate_into_a_pipe_closed_by_head_ends_quietly_with_sigpipe_status(
    tiny_checkpoint, tmp_path
):
    src = tmp_path / "in.txt"
    src.write_text("Und Gott sprach.\n" * 2000)
    # A real pipe into `head -n 1`, which exits after the first line; chunk_lines=1 writes
    # (and flushes) every line on its own, so later writes meet the closed pipe.
    translate = f"{sys.executable} {SCRIPT} ckpt={tiny_checkpoint} chunk_lines=1 < {src}"
    script = f'{translate} 2> {tmp_path / "err"} | head -n 1; echo "status=${{PIPESTATUS[0]}}"'
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    first, status = result.stdout.splitlines()
    assert (
        first == Translator.from_checkpoint(tiny_checkpoint).translate(["Und Gott sprach."])[0].text
    )
    assert status == "status=141"  # 128 + SIGPIPE, as `yes | head -n 1` gives
    assert (tmp_path / "err").read_text() == ""
