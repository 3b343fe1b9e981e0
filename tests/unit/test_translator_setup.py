"""TranslatorConfig checks and the truncation warning shared by translate and evaluate."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from nmt.tasks.translator_setup import (
    TranslatorConfig,
    checkpoint_paths,
    decoding_workers,
    warn_truncated,
)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"quantize": "int4"}, "quantize must be null or int8, got 'int4'"),
        ({"shortlist": "abc"}, "shortlist must be true or false, got 'abc'"),
        ({"progress": 1}, "progress must be true or false, got 1"),
        ({"batch_tokens": 0}, "batch_tokens must be an integer >= 1, got 0"),
        ({"workers": 0}, "workers must be an integer >= 1, got 0"),
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


def test_ckpt_is_one_path_or_a_list_of_paths():
    assert checkpoint_paths("a.ckpt") == ["a.ckpt"]
    assert checkpoint_paths(Path("runs/a.ckpt")) == ["runs/a.ckpt"]
    cfg = OmegaConf.create({"ckpt": ["a.ckpt", "b.ckpt", "c.ckpt"]})  # ckpt=[a.ckpt,b.ckpt,...]
    assert checkpoint_paths(cfg.ckpt) == ["a.ckpt", "b.ckpt", "c.ckpt"]
    for bad in ([], 3, ["a.ckpt", 3], None):
        with pytest.raises(ValueError, match=r"ckpt must be a checkpoint path or a list of them"):
            checkpoint_paths(bad)


def test_workers_null_is_one_single_threaded_worker_per_thread_on_the_cpu():
    import torch

    threads = torch.get_num_threads()
    try:
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            assert decoding_workers(TranslatorConfig(workers=None)) == count
            assert decoding_workers(TranslatorConfig(workers=None, device="cuda")) == 1
            assert decoding_workers(TranslatorConfig(workers=2)) == 2
    finally:
        torch.set_num_threads(threads)
