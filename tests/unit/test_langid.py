"""Character n-gram language identification (nmt.langid) and the langid task."""

import json
import math
from pathlib import Path

import pytest

from nmt.langid import LanguageIdentifier, ngrams
from nmt.tasks.langid import langid, spread
from tests.conftest import compose_config

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def test_ngrams_fold_case_collapse_spaces_and_pad():
    assert list(ngrams("Ab  C", (1,))) == [" ", "a", "b", " ", "c", " "]
    assert list(ngrams("ab", (2, 3))) == [" a", "ab", "b ", " ab", "ab "]


def test_scores_are_add_k_naive_bayes_computed_by_hand():
    model = LanguageIdentifier.train({"x": ["aab"], "y": ["b"]}, orders=(1,), smoothing=0.5)
    # x's unigrams: ' ' 2, a 2, b 1 (5 in all); y's: ' ' 2, b 1 (3). Vocabulary {' ', a, b} + 1.
    x, y = model.models["x"], model.models["y"]
    assert x.log_probs["a"] == pytest.approx(math.log(2.5 / (5 + 0.5 * 4)))
    assert y.unseen == pytest.approx(math.log(0.5 / (3 + 0.5 * 4)))
    # "ba" → ' ', b, a, ' ': x = log(2.5·1.5·2.5·2.5 / 7⁴), y = log(2.5·1.5·0.5·2.5 / 5⁴)
    grams = list(ngrams("ba", (1,)))
    assert x.score(grams) == pytest.approx(math.log(2.5 * 1.5 * 2.5 * 2.5 / 7**4))
    assert y.score(grams) == pytest.approx(math.log(2.5 * 1.5 * 0.5 * 2.5 / 5**4))
    assert model.identify("ba") == "x"
    assert model.identify("bbb") == "y"  # y: log(2.5²·1.5³/5⁵) > x: log(2.5²·1.5³/7⁵)
    assert model.identify("   ") is None


def test_tells_the_sample_languages_apart_on_unseen_verses():
    train = {
        lang: (SAMPLE / f"train.{lang}").read_text("utf-8").splitlines() for lang in ("de", "en")
    }
    model = LanguageIdentifier.train(train)
    for lang in ("de", "en"):
        test = (SAMPLE / f"test.{lang}").read_text("utf-8").splitlines()
        assert model.shares(test)[lang] >= 0.98, lang


def test_spread_takes_evenly_spaced_lines():
    assert spread([str(i) for i in range(10)], 4) == ["0", "2", "5", "7"]
    assert spread(["a", "b"], 5) == ["a", "b"]


def test_task_reports_the_expected_language_share(tmp_path, capsys):
    # A "translation into English" that copied half of its German source: 50 % English.
    en = (SAMPLE / "test.en").read_text("utf-8").splitlines()[:20]
    de = (SAMPLE / "test.de").read_text("utf-8").splitlines()[20:40]
    hyp = tmp_path / "hyp.txt"
    hyp.write_text("\n".join([*en, *de, ""]) + "\n", encoding="utf-8")
    report = tmp_path / "langid.json"
    texts = f"texts={{de:{SAMPLE / 'train.de'},en:{SAMPLE / 'train.en'}}}"
    cfg = compose_config(
        "langid", tmp_path, [texts, f"input={hyp}", "expect=en", f"output_json={report}"]
    )
    share = langid(cfg)
    assert share == pytest.approx(20 / 41)
    assert json.loads(report.read_text())["shares"] == {
        "de": 20 / 41,
        "en": 20 / 41,
        "none": 1 / 41,
    }
    assert f"{hyp}: en 48.8 % of 41 lines (de 48.8 %, none 2.4 %)" in capsys.readouterr().out


def test_expect_must_be_a_trained_language(tmp_path):
    cfg = compose_config(
        "langid", tmp_path, [f"texts={{en:{SAMPLE / 'train.en'}}}", "input=x", "expect=es"]
    )
    with pytest.raises(ValueError, match="expect=es: not one of the languages"):
        langid(cfg)
