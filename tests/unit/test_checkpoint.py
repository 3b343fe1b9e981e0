"""nmt.checkpoint: the metadata record against the on-disk layout of format 1, and the model
rebuild. Bad files (missing, truncated, foreign, other format) are covered by
tests/integration/test_bad_inputs.py."""

from dataclasses import replace

import torch

from nmt.checkpoint import (
    CHECKPOINT_KEY,
    CheckpointMeta,
    HyperParameters,
    load_checkpoint,
    load_meta,
    model_from_checkpoint,
)
from nmt.model.config import Seq2SeqConfig
from nmt.model.seq2seq import build_model
from nmt.tokenizer import SpecialIds

MODEL = {
    "embed_dim": 8,
    "share_embeddings": False,
    "encoder": {"num_layers": 2, "hidden_size": 8, "dropout": 0.0},
    "attention": {"hidden_size": 8},
    "decoder": {"num_layers": 2, "hidden_size": 8, "dropout": 0.0},
}
# What Lightning saves from TranslationModule's constructor arguments.
HPARAMS = {
    "model": MODEL,
    "optim": {"lr": 0.001},
    "search": {"beam_size": 1},
    "src_vocab_size": 11,
    "tgt_vocab_size": 13,
    "special_ids": {"pad": 0, "unk": 1, "bos": 2, "eos": 3},
    "val_bleu_sentences": 500,
    "train_config": {"seed": 7},
}


def meta(**changes) -> CheckpointMeta:
    record = CheckpointMeta(
        hparams=HyperParameters(MODEL, 11, 13, SpecialIds(), {"seed": 7}),
        src_spm=b"source model",
        tgt_spm=b"target model",
        src_lang="de",
        tgt_lang="multi",
        tgt_langs=("en", "fr"),
        skipped_batches=2,
    )
    return replace(record, **changes)


def test_section_has_the_format_1_keys_and_reads_back():
    record = meta()
    section = record.to_section()
    assert section == {
        "src_spm": b"source model",
        "tgt_spm": b"target model",
        "src_lang": "de",
        "tgt_lang": "multi",
        "tgt_langs": ["en", "fr"],
        "skipped_batches": 2,
        "format": 1,
    }
    read = CheckpointMeta.from_checkpoint({"hyper_parameters": HPARAMS, CHECKPOINT_KEY: section})
    assert read == record


def test_shortlist_round_trips_through_a_file(tmp_path):
    shortlist = {"candidates": torch.arange(6).view(3, 2), "tgt_vocab_size": 13}
    section = meta(shortlist=shortlist).to_section()
    path = tmp_path / "x.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": HPARAMS, CHECKPOINT_KEY: section}, path)
    read = load_meta(path)
    assert read.shortlist is not None and read.shortlist["tgt_vocab_size"] == 13
    torch.testing.assert_close(read.shortlist["candidates"], shortlist["candidates"])
    assert replace(read, shortlist=None) == meta()


def test_oldest_format_1_section_reads_with_defaults():
    # Early checkpoints: no format, tgt_langs, shortlist or skipped_batches keys.
    section = {"src_spm": b"s", "tgt_spm": b"s", "src_lang": "de", "tgt_lang": "en"}
    read = CheckpointMeta.from_checkpoint({"hyper_parameters": HPARAMS, CHECKPOINT_KEY: section})
    assert (read.tgt_langs, read.shortlist, read.skipped_batches) == ((), None, 0)
    assert read.hparams.special == SpecialIds(0, 1, 2, 3)
    assert read.hparams.model_config == Seq2SeqConfig.from_dict(MODEL)


def test_model_is_rebuilt_with_the_saved_weights(tmp_path):
    torch.manual_seed(0)
    model = build_model(Seq2SeqConfig.from_dict(MODEL), 11, 13, pad_id=0)
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    path = tmp_path / "m.ckpt"
    checkpoint = {"state_dict": state, "hyper_parameters": HPARAMS, CHECKPOINT_KEY: {}}
    torch.save(checkpoint, path)
    torch.manual_seed(1)  # a fresh build would draw other weights
    rebuilt = model_from_checkpoint(load_checkpoint(path))
    assert not rebuilt.training
    expected = model.state_dict()
    assert rebuilt.state_dict().keys() == expected.keys()
    for key, value in rebuilt.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0)
