"""The README's "Use from Python" example, run as written against the tiny checkpoint, and the
defaults it relies on."""

from __future__ import annotations

import re

import pytest

from nmt.search.strategy import SearchConfig
from nmt.tasks.hydra_setup import ROOT_DIR
from nmt.translator import Translator

EXAMPLE_CKPT = '"best.ckpt"'


def readme_example() -> str:
    readme = (ROOT_DIR / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Use from Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1, blocks
    assert EXAMPLE_CKPT in blocks[0]
    return blocks[0]


def test_readme_example_prints_one_translation_per_line(tiny_checkpoint, capsys):
    code = readme_example().replace(EXAMPLE_CKPT, repr(str(tiny_checkpoint)))
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out.split("\n")
    assert printed[-1] == ""  # every line ends with "\n"
    lines = namespace["lines"]
    assert len(printed[:-1]) == len(lines) >= 2
    # The default search is SearchConfig(): beam 5, GNMT alpha 0.6 / beta 0.1.
    expected = Translator.from_checkpoint(tiny_checkpoint).translate(lines, SearchConfig())
    for out, result in zip(printed[:-1], expected, strict=True):
        score, text = out.split("\t", 1)
        assert text == result.text
        assert float(score) == pytest.approx(result.score, abs=5e-4)


def test_score_is_the_best_of_the_nbest_list_and_attention_only_on_request(tiny_checkpoint):
    translator = Translator.from_checkpoint(tiny_checkpoint)
    lines = ["Im Anfang schuf Gott die Himmel und die Erde.", ""]
    plain = translator.translate(lines)
    asked = translator.translate(lines, nbest=3, return_attn=True)
    assert [len(r.nbest) for r in plain] == [1, 1] and [len(r.nbest) for r in asked] == [3, 3]
    assert plain[0].attn is None
    assert asked[0].attn.shape == (len(asked[0].tgt_pieces), len(asked[0].src_pieces))
    assert plain[0].nbest[0] == (plain[0].text, plain[0].score)
    assert asked[0].score == max(score for _, score in asked[0].nbest)
    assert (plain[1].text, plain[1].score) == ("", 0.0)


def test_a_single_string_is_refused(tiny_checkpoint):
    translator = Translator.from_checkpoint(tiny_checkpoint)
    with pytest.raises(ValueError, match=r"list of lines, got one str \(pass \[text\]\)"):
        translator.translate("Im Anfang schuf Gott die Himmel und die Erde.")
