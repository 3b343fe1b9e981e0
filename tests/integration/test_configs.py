"""Every config file composes, and its model/optim/search/data values pass their schemas."""

from __future__ import annotations

import pytest
from hydra.errors import HydraException
from omegaconf import OmegaConf

from nmt.cli import config_error
from nmt.data.data_config import DataConfig
from nmt.model.config import Seq2SeqConfig
from nmt.search.strategy import SearchConfig
from nmt.tasks.data import data_config
from nmt.tasks.hydra_setup import CONF_DIR, to_dict
from nmt.tasks.translator_setup import TranslatorConfig
from nmt.training.optim_config import OptimConfig


def names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def validate_train(cfg) -> None:
    """Build every typed config the train task builds; resolve everything else."""
    Seq2SeqConfig.from_dict(to_dict(cfg.model))
    OptimConfig(**to_dict(cfg.optim))
    SearchConfig(**to_dict(cfg.val.search))
    data_config(cfg)
    for key in ("trainer", "callbacks", "logger", "corpus", "val"):
        OmegaConf.to_container(cfg[key], resolve=True)


@pytest.mark.parametrize("group", ["data", "model", "optim", "trainer", "callbacks", "logger"])
def test_every_train_group_option_composes(compose_cfg, group):
    options = names(group)
    assert options, f"conf/{group} is empty"
    for option in options:
        overrides = [f"{group}={option}"]
        if option == "text":
            overrides += [
                f"data.{k}=/x/{k}" for k in ("train_src", "train_tgt", "valid_src", "valid_tgt")
            ]
        if option == "mix":
            overrides += ["data.corpora=[{src:/x/a,tgt:/x/b,weight:2}]", "data.valid_src=/x/c"]
            overrides += ["data.valid_tgt=/x/d"]
        validate_train(compose_cfg("train", overrides))


@pytest.mark.parametrize("experiment", names("experiment"))
def test_every_experiment_composes(compose_cfg, experiment):
    validate_train(compose_cfg("train", [f"experiment={experiment}"]))


@pytest.mark.parametrize("debug", names("debug"))
def test_every_debug_option_composes(compose_cfg, debug):
    validate_train(compose_cfg("train", ["experiment=smoke", f"debug={debug}"]))


@pytest.mark.parametrize("search", names("search"))
def test_every_search_option_composes(compose_cfg, search):
    cfg = compose_cfg("translate", [f"search={search}", "ckpt=x.ckpt"])
    SearchConfig(**to_dict(cfg.search))


@pytest.mark.parametrize("name", [p.stem for p in CONF_DIR.glob("*.yaml")])
def test_every_primary_config_composes(compose_cfg, name):
    cfg = compose_cfg(name)
    assert cfg.task_name == name.replace("_data", "")


def test_unknown_model_key_is_named(compose_cfg):
    cfg = compose_cfg("train", ["+model.encoder_layers=8"])
    with pytest.raises(ValueError, match="model.encoder_layers"):
        Seq2SeqConfig.from_dict(to_dict(cfg.model))


def test_gnmt8_has_eight_layers(compose_cfg):
    cfg = Seq2SeqConfig.from_dict(to_dict(compose_cfg("train", ["model=gnmt8"]).model))
    assert (cfg.encoder.num_layers, cfg.decoder.num_layers, cfg.decoder.hidden_size) == (8, 8, 1024)


SCHEMAS = {"model": Seq2SeqConfig, "optim": OptimConfig, "data": DataConfig}


@pytest.mark.parametrize("group", sorted(SCHEMAS))
def test_every_group_option_is_typed_by_its_schema(compose_cfg, group):
    for option in names(group):
        cfg = compose_cfg("train", [f"{group}={option}"])
        assert OmegaConf.get_type(cfg[group]) is SCHEMAS[group], option
    for option in names("search"):
        cfg = compose_cfg("train", [f"search@val.search={option}"])
        assert OmegaConf.get_type(cfg.val.search) is SearchConfig, option


def test_schema_defaults_are_the_base_options(compose_cfg):
    """small/adam_gnmt/beam5 hold no value of their own: the dataclass defaults are theirs."""
    cfg = compose_cfg("train", ["model=small", "optim=adam_gnmt", "search@val.search=beam5"])
    for node, schema in ((cfg.model, Seq2SeqConfig), (cfg.optim, OptimConfig)):
        assert to_dict(node) == to_dict(OmegaConf.structured(schema))
    assert SearchConfig(**to_dict(cfg.val.search)) == SearchConfig()


@pytest.mark.parametrize("name", ["translate", "evaluate"])
def test_translator_keys_come_from_one_file_at_the_top_level(compose_cfg, name):
    cfg = compose_cfg(name, ["ckpt=x.ckpt"])
    assert TranslatorConfig.from_config(cfg) == TranslatorConfig()
    overrides = ["ckpt=x.ckpt", "quantize=int8", "batch_tokens=100", "shortlist=false"]
    changed = TranslatorConfig.from_config(compose_cfg(name, overrides))
    assert changed == TranslatorConfig(quantize="int8", batch_tokens=100, shortlist=False)


def test_design_translate_command_line_composes(compose_cfg):
    """DESIGN.md: translate.py ckpt=PATH input=FILE output=FILE quantize=int8 (or beam size)."""
    io = ["ckpt=PATH", "input=FILE", "output=FILE"]
    cfg = compose_cfg("translate", [*io, "quantize=int8"])
    assert (cfg.ckpt, cfg.input, cfg.output, cfg.quantize) == ("PATH", "FILE", "FILE", "int8")
    assert compose_cfg("translate", [*io, "search.beam_size=3"]).search.beam_size == 3


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("optim.lr=abc", "error: optim.lr: Value 'abc' of type 'str' could not be converted"),
        (
            "model.decoder.hiden_size=3",
            "error: model.decoder.hiden_size: Key 'hiden_size' is not in struct "
            "(known: num_layers, hidden_size, dropout, no_residual_layer)",
        ),
        ("foo=3", "error: config: Could not override 'foo'"),
    ],
)
def test_composition_errors_name_the_key(compose_cfg, override, expected):
    with pytest.raises(HydraException) as info:
        compose_cfg("train", [override])
    assert config_error(info.value).startswith(expected)


def test_text_data_takes_tsv_files_and_names_missing_keys(compose_cfg):
    tsv = ["data=text", "data.train_tsv=/x/train.tsv", "data.valid_tsv=/x/valid.tsv"]
    data = data_config(compose_cfg("train", tsv))
    assert [str(side) for side in data.sides("train")] == [
        "/x/train.tsv (column 1)",
        "/x/train.tsv (column 2)",
    ]
    assert data.clean.duplicates is False and data.clean.copies is False  # the schema's defaults
    cleaned = data_config(compose_cfg("train", [*tsv, "data.clean.duplicates=true"]))
    assert cleaned.clean.duplicates is True
    with pytest.raises(ValueError, match=r"^data.train_src is required \(or give data.train_tsv"):
        data_config(compose_cfg("train", ["data=text"]))
    with pytest.raises(ValueError, match=r"^data.train_src: give data.train_src/train_tgt or"):
        data_config(compose_cfg("train", ["data=bible_de_en", "data.train_tsv=/x/t.tsv"]))
