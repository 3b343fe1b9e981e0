"""TranslationDataModule end to end on a tiny corpus, including resume through Lightning."""

from __future__ import annotations

import functools
import gzip
from types import SimpleNamespace

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from data_helpers import write_corpus
from pytorch_lightning.callbacks import ModelCheckpoint

import nmt.data.datamodule as datamodule_module
from nmt.data.batch import Batch
from nmt.data.data_config import DataConfig
from nmt.data.datamodule import TranslationDataModule
from nmt.tokenizer import SpecialIds, SpmTokenizer

SPM = {"joint": True, "vocab_size": 60, "user_defined_symbols": ["<2en>"]}


@pytest.fixture
def files(tmp_path):
    train = write_corpus(tmp_path / "text", count=300, seed=5, name="train")
    valid = write_corpus(tmp_path / "text", count=40, seed=50, name="valid")
    return {"train": train, "valid": valid, "work": tmp_path / "work"}


def make_dm(files, **overrides):
    args = {
        "train_src": files["train"][0],
        "train_tgt": files["train"][1],
        "valid_src": files["valid"][0],
        "valid_tgt": files["valid"][1],
        "work_dir": files["work"],
        "spm": SPM,
        "max_len": 15,
        "max_len_ratio": 2.0,
        "batch_tokens": 120,
        "valid_batch_tokens": 200,
        "num_workers": 0,
    }
    return TranslationDataModule(DataConfig(**{**args, **overrides}), seed=7)


def ready(files, **overrides):
    dm = make_dm(files, **overrides)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def indices(loader):
    return [batch.indices.tolist() for batch in loader]


def test_end_to_end(files):
    dm = ready(files)
    assert dm.src_tokenizer is dm.tgt_tokenizer
    assert dm.src_vocab_size == dm.tgt_vocab_size == dm.src_tokenizer.vocab_size
    assert dm.special_ids == SpecialIds()
    assert dm.src_tokenizer.piece_to_id("<2en>") > 3
    train_lines = files["train"][0].read_text(encoding="utf-8").splitlines()
    batches = list(dm.train_dataloader())
    assert all(isinstance(b, Batch) for b in batches)
    seen = sorted(i for b in batches for i in b.indices.tolist())
    assert seen == sorted(dm.train_dataset.line_numbers.tolist())
    assert 0 < len(seen) < len(train_lines)  # max_len_ratio=2 removes some pairs
    # A batch decodes back to its source lines.
    first = batches[0]
    rows = [row[:n].tolist() for row, n in zip(first.src, first.src_lengths, strict=True)]
    assert dm.src_tokenizer.decode(rows) == [train_lines[i] for i in first.indices.tolist()]
    valid_lines = files["valid"][1].read_text(encoding="utf-8").splitlines()
    assert dm.valid_refs == valid_lines
    assert dm.valid_src_lines == files["valid"][0].read_text(encoding="utf-8").splitlines()
    valid_seen = sorted(i for b in dm.val_dataloader() for i in b.indices.tolist())
    assert valid_seen == list(range(len(valid_lines)))  # unfiltered


def test_models_and_arrays_are_reused(files, monkeypatch):
    ready(files)
    model_files = sorted((files["work"] / "spm").iterdir())
    assert [p.suffix for p in model_files] == [".model"]

    def fail(*args, **kwargs):
        raise AssertionError("retrained or re-encoded")

    monkeypatch.setattr(SpmTokenizer, "train", fail)
    monkeypatch.setattr(datamodule_module, "binarize", _no_encoding(datamodule_module.binarize))
    again = ready(files)
    assert sorted((files["work"] / "spm").iterdir()) == model_files
    assert len(again.train_dataset) > 0


def _no_encoding(binarize):
    def wrapped(*args, **kwargs):
        import nmt.data.binarize as binarize_module

        original = binarize_module._encode_corpus
        binarize_module._encode_corpus = None  # calling it would raise TypeError
        try:
            return binarize(*args, **kwargs)
        finally:
            binarize_module._encode_corpus = original

    return wrapped


def test_separate_models(files):
    dm = ready(files, spm={"joint": False, "vocab_size": 40})
    assert dm.src_tokenizer is not dm.tgt_tokenizer
    assert dm.src_tokenizer.model_bytes != dm.tgt_tokenizer.model_bytes
    assert len(list((files["work"] / "spm").iterdir())) == 2
    assert dm.tgt_tokenizer.encode(["the house"]) != dm.src_tokenizer.encode(["the house"])


def test_config_errors_name_the_key(files):
    with pytest.raises(ValueError, match="data.spm"):
        make_dm(files, spm={"vocab_size": 60, "vocab": 1})
    with pytest.raises(ValueError, match="data.spm.vocab_size"):
        make_dm(files, spm={"joint": True})
    with pytest.raises(ValueError, match="data.max_len"):
        ready(files, max_len=0)
    good = {"per_source": 5, "frequent": 0, "max_pairs": 10}
    with pytest.raises(ValueError, match="data.shortlist.per_source must be an integer >= 1"):
        make_dm(files, shortlist={**good, "per_source": "abc"})
    with pytest.raises(ValueError, match="data.shortlist.max_pairs must be an integer >= 1"):
        make_dm(files, shortlist={"per_source": 5, "frequent": 0})
    with pytest.raises(ValueError, match="data.shortlist.topk: unknown key"):
        make_dm(files, shortlist={**good, "topk": 3})


def test_sharding_follows_the_trainer(files):
    dm = ready(files)
    alone = indices(dm.train_dataloader())
    shards = []
    for rank in (0, 1):
        dm.trainer = SimpleNamespace(world_size=2, global_rank=rank)
        shards.append(indices(dm.train_dataloader()))
    assert len(shards[0]) == len(shards[1]) == (len(alone) + 1) // 2
    assert [b for pair in zip(*shards, strict=True) for b in pair][: len(alone)] == alone


def test_state_dict_counts_consumed_batches(files):
    dm = ready(files)
    trainer = SimpleNamespace(world_size=1, global_rank=0, training=True, current_epoch=0)
    dm.trainer = trainer
    expected = indices(dm.train_dataloader())
    loader = iter(dm.train_dataloader())
    for _ in range(3):
        dm.on_before_batch_transfer(next(loader), 0)
    next(loader)  # prefetched but never consumed
    state = dm.state_dict()
    assert state["train_sampler"] == {"epoch": 0, "position": 3, "seed": 7}
    resumed = ready(files)
    resumed.load_state_dict(state)
    assert indices(resumed.train_dataloader()) == expected[3:]
    unchecked = ready(files)  # a checkpoint written before the digest existed
    unchecked.load_state_dict({"train_sampler": state["train_sampler"]})
    assert indices(unchecked.train_dataloader()) == expected[3:]


@pytest.mark.parametrize("change", [{"max_len": 12}, {"max_len_ratio": 1.5}, {"batch_tokens": 100}])
def test_resume_with_other_batching_settings_stops_with_the_keys_named(files, change):
    state = ready(files).state_dict()
    changed = ready(files, **change)
    changed.load_state_dict(state)
    with pytest.raises(ValueError, match=r"resume: the training batches differ.*data\.max_len"):
        changed.train_dataloader()
    same = ready(files)
    same.load_state_dict(state)
    assert len(same.train_dataloader()) > 0


class Recorder(pl.LightningModule):
    """Records the example indices of every training batch."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[list[int]] = []

    def training_step(self, batch, batch_idx):
        self.seen.append(batch.indices.tolist())
        return (self.weight * batch.src.float().mean()).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit_with(files, tmp_path, ckpt_path=None, factory=make_dm, **trainer_args):
    model = Recorder()
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing="callbacks" in trainer_args,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
        **trainer_args,
    )
    trainer.fit(model, datamodule=factory(files), ckpt_path=ckpt_path)
    return model, trainer


def mixed_dm(files):
    """Corpus `small` (100 pairs, weight 3) and the 300 training pairs (weight 1)."""
    small = write_corpus(files["train"][0].parent, count=100, seed=9, name="small")
    corpora = [
        {"src": small[0], "tgt": small[1], "weight": 3, "name": "small"},
        {"src": files["train"][0], "tgt": files["train"][1], "weight": 1, "name": "big"},
    ]
    return make_dm(files, train_src=None, train_tgt=None, corpora=corpora)


@pytest.mark.parametrize("factory", [make_dm, mixed_dm], ids=["one-corpus", "two-corpora"])
def test_lightning_resume_continues_at_the_next_batch(files, tmp_path, factory):
    fit = functools.partial(fit_with, factory=factory)
    reference, _ = fit(files, tmp_path, max_epochs=2)
    per_epoch = len(reference.seen) // 2
    assert reference.seen[:per_epoch] != reference.seen[per_epoch:]  # epochs reshuffled
    stop = per_epoch + 2  # a checkpoint in the middle of the second epoch
    saver = ModelCheckpoint(tmp_path / "ckpt", "{step}", every_n_train_steps=stop, save_top_k=-1)
    first, _ = fit(files, tmp_path, max_steps=stop + 3, callbacks=[saver])  # then "killed"
    assert first.seen == reference.seen[: stop + 3]
    second, _ = fit(
        files, tmp_path, ckpt_path=tmp_path / "ckpt" / f"step={stop}.ckpt", max_epochs=2
    )
    assert second.seen == reference.seen[stop:]


def test_worker_processes_give_the_same_batches(files):
    expected = indices(ready(files).train_dataloader())
    dm = ready(files, num_workers=2)
    loader = dm.train_dataloader()
    assert loader.persistent_workers
    assert indices(loader) == expected


def test_corpora_are_drawn_by_weight_every_epoch(files):
    dm = mixed_dm(files)
    dm.prepare_data()
    dm.setup("fit")
    pairs = np.bincount(dm.train_dataset.corpus_ids).tolist()
    # max_len_ratio=2 removes some pairs of each corpus; the rest are N pairs in all.
    assert 0 < pairs[0] < 100 and 0 < pairs[1] < 300
    total = sum(pairs)
    wanted = [round(total * 3 / 4), total - round(total * 3 / 4)]  # shares 3/4 and 1/4
    shares = [(s.name, s.pairs, s.per_epoch) for s in dm.corpus_shares]
    assert shares == [("small", pairs[0], wanted[0]), ("big", pairs[1], wanted[1])]
    dm.trainer = SimpleNamespace(world_size=1, global_rank=0)
    sampler = dm.train_dataloader().batch_sampler
    lines = {
        name: side.path.read_text(encoding="utf-8").splitlines()
        for name, side in (("small", dm.train_sides[0][0]), ("big", dm.train_sides[1][0]))
    }
    epochs = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        positions = np.concatenate([np.asarray(b) for b in sampler])
        assert np.bincount(dm.train_dataset.corpus_ids[positions]).tolist() == wanted
        epochs.append(sorted(positions.tolist()))
        # Each drawn example is the line of its own corpus.
        position = int(positions[-1])
        example = dm.train_dataset[position]
        name = dm.corpus_names[dm.train_dataset.corpus_ids[position]]
        decoded = dm.src_tokenizer.decode([example.src.tolist()])[0]
        assert decoded == lines[name][example.index]
    assert epochs[0] != epochs[1]  # the big corpus's quarter changes between epochs


def test_corpora_with_own_valid_sets_are_validated_in_segments(files):
    small = write_corpus(files["train"][0].parent, count=100, seed=9, name="small")
    small_valid = write_corpus(files["train"][0].parent, count=7, seed=19, name="small_valid")
    corpora = [
        {
            "src": small[0],
            "tgt": small[1],
            "name": "small",
            "valid_src": small_valid[0],
            "valid_tgt": small_valid[1],
        },
        {
            "src": files["train"][0],
            "tgt": files["train"][1],
            "name": "big",
            "valid_src": files["valid"][0],
            "valid_tgt": files["valid"][1],
        },
    ]
    dm = make_dm(
        files, train_src=None, train_tgt=None, valid_src=None, valid_tgt=None, corpora=corpora
    )
    dm.prepare_data()
    dm.setup("fit")
    assert dm.valid_segments == [("small", 0, 7), ("big", 7, 47)]
    refs = [p[1].read_text(encoding="utf-8").splitlines() for p in (small_valid, files["valid"])]
    assert dm.valid_refs == refs[0] + refs[1]
    assert len(dm.valid_dataset) == 47


def test_one_corpus_is_one_valid_segment_and_one_share(files):
    dm = ready(files)
    assert dm.valid_segments == [("text", 0, 40)]
    assert [(s.pairs, s.per_epoch, s.share) for s in dm.corpus_shares] == [
        (len(dm.train_dataset), len(dm.train_dataset), 1.0)
    ]


def test_a_corpus_emptied_by_filtering_is_named(files):
    empty = write_corpus(files["train"][0].parent, count=5, seed=3, name="long")
    empty[0].write_text("".join("a b c d e f g h i j k l m n o p\n" for _ in range(5)))
    dm = make_dm(
        files,
        train_src=None,
        train_tgt=None,
        corpora=[
            {"src": empty[0], "tgt": empty[1], "name": "long"},
            {"src": files["train"][0], "tgt": files["train"][1]},
        ],
    )
    dm.prepare_data()
    with pytest.raises(
        ValueError,
        match=r"^data.corpora\[0\] \(long\): no training pairs left "
        r"after filtering \(data.max_len=15",
    ):
        dm.setup("fit")


def pieces(tokenizer):
    return tokenizer.id_to_pieces(range(tokenizer.vocab_size))


def test_compressed_training_files_give_the_model_and_arrays_of_plain_ones(files, tmp_path):
    plain = ready(files)
    packed = []
    for path in files["train"]:
        packed.append(tmp_path / f"{path.name}.gz")
        packed[-1].write_bytes(gzip.compress(path.read_bytes()))
    other = {**files, "work": tmp_path / "work_gz"}
    dm = ready(other, train_src=str(packed[0]), train_tgt=str(packed[1]))
    # SentencePiece read its input from the sample files: the same lines, the same pieces
    # (the serialized models differ only in the input paths SentencePiece records).
    settings = {k: v for k, v in SPM.items() if k != "joint"}
    direct = SpmTokenizer.train(list(files["train"]), tmp_path / "direct.model", **settings)
    for tokenizer in (dm.src_tokenizer, plain.src_tokenizer):
        assert pieces(tokenizer) == pieces(direct)
    assert not list((other["work"] / "spm").glob("*.input*.txt"))  # the sample is removed
    assert len(dm.train_dataset) == len(plain.train_dataset)
    for i in range(0, len(dm.train_dataset), 37):
        a, b = dm.train_dataset[i], plain.train_dataset[i]
        assert a.index == b.index and a.src.tolist() == b.src.tolist()
        assert a.tgt.tolist() == b.tgt.tolist()
