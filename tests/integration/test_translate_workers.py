"""workers > 1: the batches of a translate call are decoded by forked processes, and the output
is exactly what one process gives, line for line and in order (fp32 and int8)."""

from __future__ import annotations

import pytest
import torch

from nmt import translator as translator_module
from nmt.data.corpus import read_lines
from nmt.search.strategy import SearchConfig
from nmt.tasks.hydra_setup import ROOT_DIR
from nmt.tasks.translate import translate
from nmt.translator import Translator
from tests.conftest import compose_config

SAMPLE = read_lines(ROOT_DIR / "data" / "sample" / "test.de")
# Empty lines and an over-long line among them: filled in the caller / truncated, in order.
LINES = [*SAMPLE[:60], "", " ".join(SAMPLE[:12]), "  ", *SAMPLE[60:120]]


@pytest.fixture
def one_thread():
    """The reference decodes with one thread, as each worker does."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def as_tuples(results) -> list[tuple]:
    return [
        (r.text, r.score, r.nbest, r.tgt_pieces, r.src_pieces, r.truncated, attn)
        for r in results
        for attn in [None if r.attn is None else r.attn.tolist()]
    ]


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_two_workers_give_the_one_process_output(tiny_checkpoint, one_thread, quantize):
    search = SearchConfig(beam_size=4)
    outputs = {}
    for workers in (1, 2):
        translator = Translator.from_checkpoint(
            tiny_checkpoint, quantize=quantize, max_src_tokens=40, workers=workers
        )
        try:
            # A small budget: a dozen batches, so both workers decode several each.
            results = translator.translate(
                LINES, search, batch_tokens=600, nbest=3, return_attn=True
            )
            assert (translator._pool is None) == (workers == 1)
        finally:
            translator.close()
        outputs[workers] = as_tuples(results)
    assert len(outputs[1]) == len(LINES)
    assert outputs[2] == outputs[1]
    assert [row[0] for row in outputs[1]].count("") >= 2  # the blank inputs
    assert any(row[5] for row in outputs[1])  # the long line was truncated


def test_translate_task_workers_key(tiny_checkpoint, tmp_path, monkeypatch):
    src = tmp_path / "in.txt"
    src.write_text("".join(line + "\n" for line in LINES), encoding="utf-8")
    started = []

    class SpyPool(translator_module.DecodePool):
        def __init__(self, decode, workers):
            started.append(workers)
            super().__init__(decode, workers)

    monkeypatch.setattr(translator_module, "DecodePool", SpyPool)
    outputs = {}
    for workers in (1, 2):
        out = tmp_path / f"out{workers}.txt"
        overrides = [f"ckpt={tiny_checkpoint}", f"input={src}", f"output={out}"]
        # One thread per decoding process in both runs, so that the products are the same.
        overrides += [f"threads={workers}", f"workers={workers}", "batch_tokens=500"]
        overrides += ["chunk_lines=50"]
        translate(compose_config("translate", tmp_path, overrides))
        outputs[workers] = out.read_text(encoding="utf-8")
    assert started == [2]  # one pool for the whole file (three chunks)
    assert outputs[2].count("\n") == len(LINES)
    assert outputs[2] == outputs[1]


@pytest.mark.parametrize(
    ("workers", "device", "message"),
    [
        (0, "cpu", "workers must be an integer >= 1, got 0"),
        (True, "cpu", "workers must be an integer >= 1, got True"),
        (2, "meta", "workers=2 decodes on the CPU only"),
    ],
)
def test_bad_workers_are_refused(tiny_checkpoint, workers, device, message):
    translator = Translator.from_checkpoint(tiny_checkpoint)
    model = translator.models[0].to(device)
    with pytest.raises(ValueError, match=message):
        Translator(
            model,
            translator.src_tokenizer,
            translator.tgt_tokenizer,
            translator.special,
            src_lang=translator.src_lang,
            tgt_lang=translator.tgt_lang,
            workers=workers,
        )


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_attention_in_chunks_gives_the_one_pass_output(tiny_checkpoint, quantize):
    """The same pieces and scores; the attention weights agree to the last bits (the score
    reduction over a block of rows may round differently from the one over all rows)."""
    results = {}
    for kib in (None, 1):  # 1 KiB: a few rows per block, most batches in several blocks
        translator = Translator.from_checkpoint(
            tiny_checkpoint, quantize=quantize, max_src_tokens=40, attention_chunk_kib=kib
        )
        attention = translator.models[0].decoder.attention
        assert attention.chunk_bytes == (None if kib is None else kib * 1024)
        search = SearchConfig(beam_size=4)
        results[kib] = translator.translate(LINES, search, nbest=3, return_attn=True)
    chunked, reference = as_tuples(results[1]), as_tuples(results[None])
    assert [row[:6] for row in chunked] == [row[:6] for row in reference]
    for got, want in zip(results[1], results[None], strict=True):
        if want.attn is not None:
            torch.testing.assert_close(got.attn, want.attn, rtol=0, atol=1e-6)
