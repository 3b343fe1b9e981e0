"""Online back-translation into untrained directions (optim.back_translation)."""

from types import SimpleNamespace

import pytest
import torch

from nmt.data.batch import Batch
from nmt.search.greedy import greedy_search
from nmt.training.back_translation import (
    PivotPlan,
    back_translate,
    rewritten_rows,
    with_sources,
)
from nmt.training.module import TranslationModule
from nmt.training.optim_config import OptimConfig
from tests.unit.data_helpers import separate_vocabularies
from tests.unit.test_checkpoint import MODEL

SPECIAL = {"pad": 0, "unk": 1, "bos": 2, "eos": 3}
TAGS = {"<2en>": 4, "<2es>": 5, "<2pt>": 6}
# bible_multi's directions, in file order, with 2 / 1 / 2 / 1 pairs: lines 0-1 pt->en,
# line 2 en->pt, lines 3-4 es->en, line 5 en->es.
DIRECTIONS = [("pt", "en"), ("en", "pt"), ("es", "en"), ("en", "es")]
GROUPS = [2, 1, 2, 1]


def _plan() -> PivotPlan:
    return PivotPlan.build(DIRECTIONS, GROUPS, TAGS.__getitem__)


def test_plan_goes_through_the_third_language_of_each_english_source_direction():
    plan = _plan()
    # en->pt goes through es (en->es trained, es->pt not); en->es through pt; the sources
    # of pt->en and es->en have no trained direction into a third language.
    assert plan.thirds == ((), (TAGS["<2es>"],), (), (TAGS["<2pt>"],))
    assert plan.tags.tolist() == [4, 6, 4, 5]
    assert plan.stops.tolist() == [2, 3, 5, 6]


def test_plan_without_an_untrained_direction_is_refused():
    every = DIRECTIONS + [("pt", "es"), ("es", "pt")]
    with pytest.raises(ValueError, match=r"optim.back_translation > 0: no untrained direction"):
        PivotPlan.build(every, [1] * len(every), TAGS.__getitem__)


def test_rows_are_drawn_from_the_eligible_directions_with_the_share():
    plan = _plan()
    indices = torch.tensor([0, 1, 2, 3, 4, 5])
    assert rewritten_rows(plan, indices, 1.0) == [
        (2, TAGS["<2pt>"], TAGS["<2es>"]),
        (5, TAGS["<2es>"], TAGS["<2pt>"]),
    ]
    assert rewritten_rows(plan, indices, 0.0) == []
    torch.manual_seed(0)
    many = torch.full((4000,), 2)  # every row en->pt
    drawn = len(rewritten_rows(plan, many, 0.3))
    assert 0.27 * 4000 < drawn < 0.33 * 4000
    torch.manual_seed(1)
    first = rewritten_rows(plan, many, 0.3)
    torch.manual_seed(1)
    assert rewritten_rows(plan, many, 0.3) == first  # the same RNG state draws the same rows


def test_a_direction_with_two_third_languages_uses_both():
    directions = [("en", "pt"), ("en", "es"), ("en", "fr")]
    plan = PivotPlan.build(directions, [1, 1, 1], {**TAGS, "<2fr>": 7}.__getitem__)
    assert plan.thirds[0] == (TAGS["<2es>"], 7)
    torch.manual_seed(0)
    picked = {pick.third for pick in rewritten_rows(plan, torch.zeros(200, dtype=torch.long), 1.0)}
    assert picked == {TAGS["<2es>"], 7}


def _batch() -> Batch:
    src = torch.tensor([[8, 4, 9, 10, 7], [8, 6, 9, 0, 0], [8, 5, 10, 7, 9]])
    tgt_out = torch.tensor([[9, 10, 3], [5, 3, 0], [7, 3, 0]])
    tgt_in = torch.tensor([[2, 9, 10], [2, 5, 0], [2, 7, 0]])
    return Batch(src, torch.tensor([5, 3, 5]), tgt_in, tgt_out, 7, torch.tensor([0, 2, 5]))


def test_with_sources_replaces_rows_and_repads():
    batch = _batch()
    out = with_sources(batch, [0, 2], [[8, 4, 7], [8, 5, 9, 9, 9, 10]], pad=0)
    assert out.src.tolist() == [[8, 4, 7, 0, 0, 0], [8, 6, 9, 0, 0, 0], [8, 5, 9, 9, 9, 10]]
    assert out.src_lengths.tolist() == [3, 3, 6]
    assert out.tgt_out is batch.tgt_out and out.indices is batch.indices
    narrower = with_sources(batch, [0, 2], [[8, 4], [8, 5, 7]], pad=0)
    assert narrower.src.tolist() == [[8, 4, 0], [8, 6, 9], [8, 5, 7]]


def _module(share: float, start: int = 0) -> TranslationModule:
    torch.manual_seed(0)  # weights whose greedy translations below are not empty
    model = {**MODEL, "share_embeddings": True}
    optim = {"lr": 0.001, "back_translation": share, "back_translation_from": start}
    search = {"beam_size": 1, "max_len_a": 1.0, "max_len_b": 2}
    module = TranslationModule(model, optim, search, 11, 11, SPECIAL)
    module.log = lambda *args, **kwargs: None  # no Trainer here
    with torch.no_grad():  # larger weights: the loss depends on the source visibly
        for param in module.parameters():
            param.mul_(4.0)
    module.pivot_plan = _plan()
    return module


def _by_hand(module: TranslationModule) -> Batch:
    """The batch as back-translation should leave it: rows 1 (en->pt, through es) and 2
    (en->es, through pt) translated by greedy search with their tag swapped."""
    batch = _batch()
    model = module.model.eval()
    pivots = {1: [8, 5, 9], 2: [8, 6, 10, 7, 9]}
    sources = []
    for row, pivot in pivots.items():
        hyps = greedy_search(
            model,
            torch.tensor([pivot]),
            torch.tensor([len(pivot)]),
            bos_id=2,
            eos_id=3,
            max_len_a=1.0,
            max_len_b=2,
        )
        tokens = hyps.best_tokens()[0]
        assert tokens  # not empty (an empty one leaves its row as it is)
        sources.append(batch.src[row, :2].tolist() + tokens)
    model.train()
    return with_sources(batch, list(pivots), sources, pad=0)


class _Recorder:
    """The model, remembering the sources it is asked to encode."""

    def __init__(self, model):
        self.model, self.sources = model, []
        self.step, self.init_state = model.step, model.init_state
        self.eval, self.train = model.eval, model.train

    @property
    def training(self):
        return self.model.training

    def encode(self, src, src_lengths):
        self.sources.append(src.masked_fill(torch.arange(src.shape[1]) >= src_lengths[:, None], 0))
        return self.model.encode(src, src_lengths)


def test_back_translate_rewrites_the_drawn_rows_with_the_models_greedy_translation():
    module = _module(1.0)
    expected = _by_hand(module)
    module.model.train()
    recorder = _Recorder(module.model)
    got, rewritten = back_translate(
        recorder, _batch(), module.pivot_plan, 1.0, special=(0, 2, 3), max_len=(1.0, 2)
    )
    # The two English sources, asked for the third language instead.
    assert [s.tolist() for s in recorder.sources] == [[[8, 5, 9, 0, 0], [8, 6, 10, 7, 9]]]
    assert rewritten == 2
    assert got.src.tolist() == expected.src.tolist()
    assert got.src_lengths.tolist() == expected.src_lengths.tolist()
    assert module.model.training  # back in training mode


def test_training_step_trains_on_the_back_translated_batch_from_its_start_update(monkeypatch):
    module = _module(1.0, start=3)
    plain = _module(0.0)
    plain.load_state_dict(module.state_dict())
    rewritten = _by_hand(module)
    module.eval(), plain.eval()  # no dropout: the runs below see the same network
    steps = iter([2, 3])  # the Trainer's global_step at two training steps
    monkeypatch.setattr(TranslationModule, "global_step", property(lambda self: next(steps)))
    before = float(module.training_step(_batch(), 0))
    after = float(module.training_step(_batch(), 1))
    monkeypatch.undo()
    assert before == pytest.approx(float(plain.training_step(_batch(), 0)), rel=1e-6)
    assert after == pytest.approx(float(plain.training_step(rewritten, 0)), rel=1e-6)
    assert abs(after - before) > 1e-4 * before  # 100x the tolerance above


def test_back_translation_needs_a_joint_vocabulary_and_directions():
    module = _module(0.5)
    with pytest.raises(ValueError, match=r"optim.back_translation > 0 needs one SentencePiece"):
        module.attach_vocabulary(separate_vocabularies())
    joint = SimpleNamespace(model_bytes=b"joint")
    bilingual = SimpleNamespace(
        src_tokenizer=joint,
        tgt_tokenizer=joint,
        config=SimpleNamespace(directions=None),
        groups=None,
    )
    with pytest.raises(ValueError, match=r"needs a multilingual corpus \(data.directions\)"):
        module.attach_vocabulary(bilingual)


def test_out_of_range_settings_are_refused():
    with pytest.raises(ValueError, match=r"optim.back_translation must be in \[0, 1\]"):
        OptimConfig(back_translation=1.5)
    with pytest.raises(ValueError, match=r"optim.back_translation_from must be >= 0"):
        OptimConfig(back_translation_from=-1)
