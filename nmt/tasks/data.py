"""The training corpus of a `data` config: prepared when missing, then its DataModule."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from nmt.data.data_config import DataConfig
from nmt.data.datamodule import TranslationDataModule
from nmt.data.multilingual import Direction, build_split
from nmt.data.recipes import bible
from nmt.tasks.hydra_setup import typed_dict
from nmt.tasks.prepare import bible_source
from nmt.utils.logging import rank_zero_print


def data_config(cfg: DictConfig) -> DataConfig:
    """The `data` node, type-checked and range-checked (ValueError names the key)."""
    return DataConfig.from_dict(typed_dict(cfg.data, DataConfig, "data"))


@dataclass(frozen=True)
class DirectionSizes:
    """Pairs each direction contributes to the combined train and valid files, in order."""

    train: list[int]
    valid: list[int]


def ensure_corpus(cfg: DictConfig) -> DirectionSizes | None:
    """Make sure the training and validation files exist, running the recipe when needed.

    Returns:
        For a multilingual config (`data.directions`), the pairs each direction contributes
        to the combined files; None otherwise.
    """
    data = data_config(cfg)
    if data.directions:
        return ensure_multilingual(cfg, data)
    if data.corpora:
        check_corpora(data)
        return None
    needed = [side.path for split in ("train", "valid") for side in data.sides(split)]
    if all(p.is_file() for p in needed):
        return None
    if data.recipe is None or data.train_tsv is not None or data.valid_tsv is not None:
        missing = next(p for p in needed if not p.is_file())
        raise ValueError(f"{missing}: file not found")
    src = data.bible.src or bible_code(data, data.src_lang, "data.src_lang")
    tgt = data.bible.tgt or bible_code(data, data.tgt_lang, "data.tgt_lang")
    prepare_bible_pair(cfg, Path(data.dir), data.src_lang, data.tgt_lang, src, tgt)
    return None


def check_corpora(data: DataConfig) -> None:
    """Stop at the first missing file of `data.corpora`, naming its key."""
    assert data.corpora is not None
    for i, corpus in enumerate(data.corpora):
        for key in ("src", "tgt", "tsv", "valid_src", "valid_tgt", "valid_tsv"):
            path = getattr(corpus, key)
            if path is not None and not Path(path).is_file():
                raise ValueError(f"data.corpora[{i}].{key}: {path}: file not found")
    for key in ("valid_src", "valid_tgt", "valid_tsv"):
        path = getattr(data, key)
        if path is not None and not Path(path).is_file():
            raise ValueError(f"data.{key}: {path}: file not found")


def ensure_multilingual(cfg: DictConfig, data: DataConfig) -> DirectionSizes:
    """Prepare every direction's pair (Bible recipe) and write the combined tagged files."""
    assert data.directions is not None
    directions = [multilingual_direction(cfg, data, i) for i in range(len(data.directions))]
    policy = data.on_invalid_utf8
    train = (Path(data.train_src), Path(data.train_tgt))
    sizes = build_split(directions, "train", train, on_invalid_utf8=policy)
    valid = (Path(data.valid_src), Path(data.valid_tgt))
    valid_sizes = build_split(directions, "valid", valid, data.valid_lines_per_direction, policy)
    names = ", ".join(f"{d.name} {n:,}" for d, n in zip(directions, sizes, strict=True))
    rank_zero_print(f"multilingual corpus {data.train_src}: {names} training pairs")
    return DirectionSizes(sizes, valid_sizes)


def multilingual_direction(cfg: DictConfig, data: DataConfig, index: int) -> Direction:
    """Direction `index` of `data.directions`; its pair directory is prepared when missing.

    Without `dir`, the pair lives in `<paths.data_dir>/bible/<src>-<tgt>` or, prepared for
    the opposite direction, `<tgt>-<src>` (one pair of files serves both directions).
    """
    assert data.directions is not None
    entry = data.directions[index]
    key = f"data.directions[{index}]"
    src_lang, tgt_lang = entry.src_lang, entry.tgt_lang
    if entry.dir:
        direction = Direction(src_lang, tgt_lang, Path(entry.dir))
        for path in (*direction.files("train"), *direction.files("valid")):
            if not path.is_file():
                raise ValueError(f"{key}.dir: {path}: file not found")
        return direction
    root = Path(cfg.paths.data_dir) / "bible"
    for name in (f"{src_lang}-{tgt_lang}", f"{tgt_lang}-{src_lang}"):
        direction = Direction(src_lang, tgt_lang, root / name)
        if all(p.is_file() for p in bible.split_files(direction.dir, src_lang, tgt_lang)):
            return direction
    src = bible_code(data, src_lang, f"{key}.src_lang")
    tgt = bible_code(data, tgt_lang, f"{key}.tgt_lang")
    prepare_bible_pair(cfg, root / f"{src_lang}-{tgt_lang}", src_lang, tgt_lang, src, tgt)
    return Direction(src_lang, tgt_lang, root / f"{src_lang}-{tgt_lang}")


def bible_code(data: DataConfig, lang: str, key: str) -> str:
    """The Bible translation of `lang`: `data.bible.codes[lang]`, else the language default."""
    codes = data.bible.codes
    return str(codes[lang]) if lang in codes else bible.default_code(lang, key)


def prepare_bible_pair(
    cfg: DictConfig, out_dir: Path, src_lang: str, tgt_lang: str, src: str, tgt: str
) -> None:
    result = bible.prepare_pair(
        bible_source(cfg.corpus), out_dir, src=src, tgt=tgt, src_lang=src_lang, tgt_lang=tgt_lang
    )
    if result is not None:
        rank_zero_print(f"prepared {out_dir}: {result.counts} (Bible {src}->{tgt})")


def build_datamodule(cfg: DictConfig, sizes: DirectionSizes | None = None) -> TranslationDataModule:
    """The DataModule of `cfg.data`; `sizes` as returned by `ensure_corpus`."""
    if sizes is None:
        return TranslationDataModule(data_config(cfg), seed=cfg.seed)
    return TranslationDataModule(
        data_config(cfg), seed=cfg.seed, groups=sizes.train, valid_groups=sizes.valid
    )
