"""Validation BLEU: overall and per segment (corpus/direction) of the valid set."""

from types import SimpleNamespace

import pytest
import sacrebleu
import torch

from nmt.training.module import TranslationModule
from tests.unit.test_checkpoint import MODEL

WORDS = [
    *("the", "a", "house", "man", "woman", "saw", "went"),
    *("over", "bridge", "big", "small", "child", "street"),
]
REFS = [
    "the man saw the big house",
    "a woman went over the bridge",
    "the child saw a small street",
    "the big man went over a small bridge",
    "a child saw the woman",
    "the house over the street",
]
HYPS = [  # segment "a": two exact, one partial; segment "b": partial
    "the man saw the big house",
    "a woman went over the bridge",
    "the child saw the street",
    "the big man went over the bridge",
    "a child saw a woman",
    "house over the small street",
]


class WordTokenizer:
    """Piece i is WORDS[i]."""

    def decode(self, ids: list[list[int]]) -> list[str]:
        return [" ".join(WORDS[i] for i in row) for row in ids]


def module_with(segments, cap: int = 500) -> TranslationModule:
    module = TranslationModule(
        MODEL,
        {"lr": 0.001},
        {"beam_size": 1},
        src_vocab_size=len(WORDS),
        tgt_vocab_size=len(WORDS),
        special_ids={"pad": 0, "unk": 1, "bos": 2, "eos": 3},
        val_bleu_sentences=cap,
    )
    datamodule = SimpleNamespace(
        valid_refs=REFS, valid_segments=segments, tgt_tokenizer=WordTokenizer()
    )
    module._trainer = SimpleNamespace(datamodule=datamodule)
    return module


def collect(module: TranslationModule, lines) -> None:
    module._val_hyps = {i: [WORDS.index(w) for w in HYPS[i].split()] for i in lines}


def bleu(lines) -> float:
    return sacrebleu.corpus_bleu([HYPS[i] for i in lines], [[REFS[i] for i in lines]]).score


def test_each_segment_is_scored_alone_and_all_together():
    module = module_with([("pt-en", 0, 3), ("es-en", 3, 6)])
    collect(module, range(6))
    scores = module._valid_bleu()
    assert scores.keys() == {None, "pt-en", "es-en"}
    assert scores[None] == pytest.approx(bleu(range(6)))
    assert scores["pt-en"] == pytest.approx(bleu([0, 1, 2]))
    assert scores["es-en"] == pytest.approx(bleu([3, 4, 5]))
    assert len({round(v, 6) for v in scores.values()}) == 3  # three different figures
    assert min(scores.values()) > 0
    assert module._val_hyps == {}  # consumed


def test_one_segment_gives_only_the_overall_score():
    module = module_with([("text", 0, 6)])
    collect(module, range(6))
    assert module._valid_bleu() == {None: pytest.approx(bleu(range(6)))}


def test_the_bleu_cap_counts_lines_in_each_segment():
    module = module_with([("a", 0, 3), ("b", 3, 6)], cap=2)
    wanted = module._bleu_wanted(torch.tensor([5, 0, 3, 2, 1, 4]))
    assert wanted.tolist() == [False, True, True, False, True, True]
    module = module_with([("text", 0, 6)], cap=2)
    assert module._bleu_wanted(torch.arange(6)).tolist() == [True, True] + [False] * 4
