"""TranslatorConfig checks and the truncation warning shared by translate and evaluate."""

import pytest

from nmt.tasks.translator_setup import TranslatorConfig, warn_truncated


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"quantize": "int4"}, "quantize must be null or int8, got 'int4'"),
        ({"shortlist": "abc"}, "shortlist must be true or false, got 'abc'"),
        ({"progress": 1}, "progress must be true or false, got 1"),
        ({"batch_tokens": 0}, "batch_tokens must be an integer >= 1, got 0"),
        ({"max_src_tokens": "abc"}, "max_src_tokens must be an integer >= 1, got 'abc'"),
        ({"on_invalid_utf8": "ignore"}, "on_invalid_utf8 must be one of error, replace"),
    ],
)
def test_bad_values_name_their_key(values, message):
    with pytest.raises(ValueError, match=message):
        TranslatorConfig(**values)


def test_truncation_warning_only_when_lines_were_cut(capsys):
    warn_truncated(0, TranslatorConfig())
    assert capsys.readouterr().err == ""
    warn_truncated(2, TranslatorConfig(max_src_tokens=30))
    assert capsys.readouterr().err == (
        "warning: 2 input line(s) longer than max_src_tokens=30 pieces were truncated "
        "before translation\n"
    )
