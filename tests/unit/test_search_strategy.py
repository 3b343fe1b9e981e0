"""SearchConfig: the one place where the search settings are checked."""

from __future__ import annotations

import re

import pytest

from nmt.search.strategy import SearchConfig


@pytest.mark.parametrize(
    ("kw", "key"),
    [
        (dict(beam_size=0), "search.beam_size"),
        (dict(len_alpha=-0.1), "search.len_alpha"),
        (dict(cov_beta=-0.1), "search.cov_beta"),
        (dict(max_len_a=-1.0), "search.max_len_a"),
        (dict(max_len_b=-1), "search.max_len_a/max_len_b"),
        (dict(max_len_a=0.0, max_len_b=0), "search.max_len_a/max_len_b"),
    ],
)
def test_invalid_settings_raise_naming_the_key(kw: dict, key: str) -> None:
    with pytest.raises(ValueError, match=re.escape(key)):
        SearchConfig(**kw)


def test_boundary_settings_are_accepted() -> None:
    SearchConfig(beam_size=1, len_alpha=0.0, cov_beta=0.0, max_len_a=0.0, max_len_b=1)
    SearchConfig(max_len_a=0.5, max_len_b=0)
