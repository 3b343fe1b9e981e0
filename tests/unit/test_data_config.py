"""DataConfig: the `data` node's checks, each naming its key."""

import pytest

from nmt.data.data_config import DataConfig, DirectionConfig, ShortlistConfig, SpmConfig

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
