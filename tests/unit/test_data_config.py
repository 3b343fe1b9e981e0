"""DataConfig: the `data` node's checks, each naming its key."""

from pathlib import Path

import pytest

from nmt.data.data_config import (
    CleanConfig,
    CorpusConfig,
    DataConfig,
    DirectionConfig,
    ShortlistConfig,
    SpmConfig,
)
from nmt.data.reader import TextSide, tsv_sides

FILES = {"train_src": "a", "train_tgt": "b", "valid_src": "c", "valid_tgt": "d", "work_dir": "w"}


def make(**values):
    return DataConfig.from_dict({**FILES, "spm": {"vocab_size": 100}, **values})


def test_nested_nodes_become_dataclasses():
    config = make(
        shortlist={"per_source": 5, "frequent": 0, "max_pairs": 10},
        directions=[{"src_lang": "pt", "tgt_lang": "en"}, {"src_lang": "en", "tgt_lang": "es"}],
    )
    assert config.spm == SpmConfig(vocab_size=100)
    assert config.shortlist == ShortlistConfig(5, 0, 10)
    assert config.directions == [DirectionConfig("pt", "en"), DirectionConfig("en", "es")]
    assert config.tgt_langs == ["en", "es"]
    assert make().tgt_langs == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"recipe": "wmt"}, "data.recipe must be bible or null, got 'wmt'"),
        ({"on_invalid_utf8": "ignore"}, "data.on_invalid_utf8 must be one of error, replace"),
        ({"spm": {"joint": True}}, "data.spm.vocab_size is required"),
        ({"bible": {"source": "e"}}, r"data.bible.source: unknown key \(known: src, tgt, codes\)"),
        ({"max_lenn": 3}, "data.max_lenn: unknown key"),
        ({"directions": [{"src_lang": "pt"}]}, r"data.directions\[0\]: give src_lang, tgt_lang"),
    ],
)
def test_bad_values_name_their_key(values, message):
    with pytest.raises(ValueError, match=message):
        make(**values)


MIX = {**FILES, "train_src": None, "train_tgt": None}
CORPORA = [{"src": "a.de", "tgt": "a.en", "weight": 3}, {"src": "b.de", "tgt": "b.en"}]


def mixed(corpora, **values):
    return DataConfig.from_dict({**MIX, "spm": {"vocab_size": 100}, "corpora": corpora, **values})


def test_corpora_get_names_and_float_weights():
    config = mixed(CORPORA)
    assert config.corpora == [
        CorpusConfig("a.de", "a.en", 3.0, "corpus0"),
        CorpusConfig("b.de", "b.en", 1.0, "corpus1"),
    ]
    own = [{**CORPORA[0], "name": "web", "valid_src": "v.de", "valid_tgt": "v.en"}]
    assert mixed(own, valid_src=None, valid_tgt=None).corpora[0].has_valid


@pytest.mark.parametrize(
    ("corpora", "values", "message"),
    [
        (
            [CORPORA[0], {**CORPORA[1], "weight": -1}],
            {},
            r"^data.corpora\[1\].weight must be a positive number, got -1$",
        ),
        (
            [{**CORPORA[0], "weight": 0}],
            {},
            r"^data.corpora\[0\].weight must be a positive number, got 0$",
        ),
        (
            [{**CORPORA[0], "weight": float("inf")}],
            {},
            r"data.corpora\[0\].weight must be a positive",
        ),
        (
            [{**CORPORA[0], "weight": "3"}],
            {},
            r"data.corpora\[0\].weight must be a positive number, got '3'",
        ),
        ([{**CORPORA[0], "weight": True}], {}, r"data.corpora\[0\].weight must be a positive"),
        (
            [{"src": "a.de", "weight": 1}],
            {},
            r"^data.corpora\[0\].tgt is required \(or give data.corpora\[0\].tsv\)$",
        ),
        (
            [{"weight": 1}],
            {},
            r"^data.corpora\[0\].src is required \(or give data.corpora\[0\].tsv\)$",
        ),
        (
            [{**CORPORA[0], "tsv": "a.tsv"}],
            {},
            r"^data.corpora\[0\].src: give data.corpora\[0\].src/tgt or data.corpora\[0\].tsv, "
            r"not both \(set src to null\)$",
        ),
        (
            [{"tsv": "a.tsv", "valid_tsv": "v.tsv", "valid_tgt": "v.en"}],
            {"valid_src": None, "valid_tgt": None},
            r"^data.corpora\[0\].valid_tgt: give data.corpora\[0\].valid_src/valid_tgt or "
            r"data.corpora\[0\].valid_tsv, not both",
        ),
        ([{"tsv": ""}], {}, r"^data.corpora\[0\].tsv must be a file path, got ''$"),
        (
            [{**CORPORA[0], "wieght": 1}],
            {},
            r"^data.corpora\[0\].wieght: unknown key \(known: src, tgt, weight",
        ),
        (["a.de"], {}, r"^data.corpora\[0\]: give src, tgt \(or tsv\) and weight \(got 'a.de'\)$"),
        ([{**CORPORA[0], "name": "a b"}], {}, r"data.corpora\[0\].name must be letters"),
        (
            [{**CORPORA[0], "name": "x"}, {**CORPORA[1], "name": "x"}],
            {},
            r"^data.corpora\[1\].name: 'x' is used twice$",
        ),
        (
            [{**CORPORA[0], "valid_src": "v.de"}],
            {},
            r"^data.corpora\[0\].valid_tgt is required \(or give data.corpora\[0\].valid_tsv\)$",
        ),
        ([], {}, r"^data.corpora is empty"),
        (
            CORPORA,
            {"train_src": "a"},
            r"^data.train_src: the files come from data.corpora; set it to null$",
        ),
        (
            CORPORA,
            {"directions": [{"src_lang": "a", "tgt_lang": "b"}]},
            r"^data.corpora: not with data.directions",
        ),
        (
            [{**CORPORA[0], "valid_src": "v", "valid_tgt": "w"}],
            {},
            r"^data.valid_src: the files come from data.corpora\[i\].valid_\*",
        ),
        (
            None,
            {},
            r"^data.train_src is required \(or give data.train_tsv, or the files in "
            r"data.corpora\)$",
        ),
        (
            CORPORA,
            {"train_tsv": "t.tsv"},
            r"^data.train_tsv: the files come from data.corpora; set it to null$",
        ),
    ],
)
def test_bad_corpora_give_one_line_errors(corpora, values, message):
    with pytest.raises(ValueError, match=message) as err:
        mixed(corpora, **values)
    assert "\n" not in str(err.value)


TSV = {"train_tsv": "train.tsv", "valid_tsv": "valid.tsv", "work_dir": "w"}


def test_tsv_files_give_the_two_columns_as_sides():
    config = DataConfig.from_dict({**dict.fromkeys(FILES, None), **TSV, "spm": {"vocab_size": 100}})
    assert config.sides("train") == (TextSide(Path("train.tsv"), 0), TextSide(Path("train.tsv"), 1))
    assert config.sides("valid") == (TextSide(Path("valid.tsv"), 0), TextSide(Path("valid.tsv"), 1))
    assert make().sides("train") == (TextSide(Path("a")), TextSide(Path("b")))
    # One form per split: a TSV training file with two valid files is fine.
    mixed_forms = make(train_src=None, train_tgt=None, train_tsv="t.tsv")
    assert mixed_forms.sides("valid") == (TextSide(Path("c")), TextSide(Path("d")))
    corpus = mixed([{"tsv": "a.tsv", "valid_tsv": "v.tsv"}], valid_src=None, valid_tgt=None)
    assert corpus.corpora[0].has_valid
    assert corpus.corpora[0].sides("valid") == tsv_sides("v.tsv")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"train_tsv": "t.tsv"},
            r"^data.train_src: give data.train_src/train_tgt or data.train_tsv, not both "
            r"\(set train_src to null\)$",
        ),
        (
            {"train_src": None},
            r"^data.train_src is required \(or give data.train_tsv, or the files in "
            r"data.corpora\)$",
        ),
        (
            {"valid_src": None, "valid_tsv": "v.tsv"},
            r"^data.valid_tgt: give data.valid_src/valid_tgt or data.valid_tsv, not both",
        ),
        (
            {"valid_src": None, "valid_tgt": None},
            r"^data.valid_src is required \(or give data.valid_tsv, or the files in "
            r"data.corpora\[i\].valid_\*\)$",
        ),
        (
            {"clean": {"duplicates": "yes"}},
            r"^data.clean.duplicates must be true or false, got 'yes'$",
        ),
        (
            {"clean": {"dedup": True}},
            r"^data.clean.dedup: unknown key \(known: duplicates, copies\)$",
        ),
    ],
)
def test_one_form_per_split_and_clean_keys_are_named(values, message):
    with pytest.raises(ValueError, match=message) as err:
        make(**values)
    assert "\n" not in str(err.value)


def test_cleaning_is_off_by_default():
    assert make().clean == CleanConfig(duplicates=False, copies=False)
    assert make(clean={"copies": True}).clean == CleanConfig(duplicates=False, copies=True)
