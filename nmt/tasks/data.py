"""The training corpus of a `data` config: prepared when missing, then its DataModule."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from nmt.data.datamodule import TranslationDataModule
from nmt.data.multilingual import Direction, build_split
from nmt.data.recipes import bible
from nmt.tasks.hydra_setup import to_dict
from nmt.tasks.prepare import bible_source
from nmt.utils.logging import rank_zero_print


def ensure_corpus(cfg: DictConfig) -> list[int] | None:
    """Make sure the training and validation files exist, running the recipe when needed.

    Returns:
        For a multilingual config (`data.directions`), the pairs each direction contributes
        to the combined training files; None for a single pair.
    """
    data = cfg.data
    if data.directions:
        return ensure_multilingual(cfg)
    needed = [Path(data[key]) for key in ("train_src", "train_tgt", "valid_src", "valid_tgt")]
    if all(p.is_file() for p in needed):
        return None
    if data.recipe is None:
        missing = next(p for p in needed if not p.is_file())
        raise ValueError(f"{missing}: file not found")
    if data.recipe != "bible":
        raise ValueError(f"data.recipe must be bible or null, got {data.recipe!r}")
    src = data.bible.src or bible_code(cfg, data.src_lang, "data.src_lang")
    tgt = data.bible.tgt or bible_code(cfg, data.tgt_lang, "data.tgt_lang")
    prepare_bible_pair(cfg, Path(data.dir), data.src_lang, data.tgt_lang, src, tgt)
    return None


def ensure_multilingual(cfg: DictConfig) -> list[int]:
    """Prepare every direction's pair (Bible recipe) and write the combined tagged files."""
    data = cfg.data
    directions = [multilingual_direction(cfg, i) for i in range(len(data.directions))]
    policy = data.on_invalid_utf8
    train = (Path(data.train_src), Path(data.train_tgt))
    sizes = build_split(directions, "train", train, on_invalid_utf8=policy)
    valid = (Path(data.valid_src), Path(data.valid_tgt))
    build_split(directions, "valid", valid, data.valid_lines_per_direction, policy)
    names = ", ".join(f"{d.name} {n:,}" for d, n in zip(directions, sizes, strict=True))
    rank_zero_print(f"multilingual corpus {data.train_src}: {names} training pairs")
    return sizes


def multilingual_direction(cfg: DictConfig, index: int) -> Direction:
    """Direction `index` of `data.directions`; its pair directory is prepared when missing.

    Without `dir`, the pair lives in `<paths.data_dir>/bible/<src>-<tgt>` or, prepared for
    the opposite direction, `<tgt>-<src>` (one pair of files serves both directions).
    """
    entry = cfg.data.directions[index]
    key = f"data.directions[{index}]"
    unknown = sorted(set(entry) - {"src_lang", "tgt_lang", "dir"})
    if unknown or not entry.get("src_lang") or not entry.get("tgt_lang"):
        raise ValueError(f"{key}: give src_lang, tgt_lang and optionally dir (got {dict(entry)})")
    src_lang, tgt_lang = str(entry.src_lang), str(entry.tgt_lang)
    if entry.get("dir"):
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
    src = bible_code(cfg, src_lang, f"{key}.src_lang")
    tgt = bible_code(cfg, tgt_lang, f"{key}.tgt_lang")
    prepare_bible_pair(cfg, root / f"{src_lang}-{tgt_lang}", src_lang, tgt_lang, src, tgt)
    return Direction(src_lang, tgt_lang, root / f"{src_lang}-{tgt_lang}")


def bible_code(cfg: DictConfig, lang: str, key: str) -> str:
    """The Bible translation of `lang`: `data.bible.codes[lang]`, else the language default."""
    codes = cfg.data.bible.get("codes") or {}
    return str(codes[lang]) if lang in codes else bible.default_code(lang, key)


def prepare_bible_pair(
    cfg: DictConfig, out_dir: Path, src_lang: str, tgt_lang: str, src: str, tgt: str
) -> None:
    result = bible.prepare_pair(
        bible_source(cfg.corpus), out_dir, src=src, tgt=tgt, src_lang=src_lang, tgt_lang=tgt_lang
    )
    if result is not None:
        rank_zero_print(f"prepared {out_dir}: {result.counts} (Bible {src}->{tgt})")


def build_datamodule(cfg: DictConfig, groups: list[int] | None = None) -> TranslationDataModule:
    """The DataModule of `cfg.data`; `groups` as returned by `ensure_corpus`."""
    data = cfg.data
    tgt_langs = [str(d.tgt_lang) for d in data.directions or []]
    return TranslationDataModule(
        train_src=data.train_src,
        train_tgt=data.train_tgt,
        valid_src=data.valid_src,
        valid_tgt=data.valid_tgt,
        src_lang=data.src_lang,
        tgt_lang=data.tgt_lang,
        work_dir=data.work_dir,
        spm=to_dict(data.spm),
        max_len=data.max_len,
        max_len_ratio=data.max_len_ratio,
        batch_tokens=data.batch_tokens,
        valid_batch_tokens=data.valid_batch_tokens,
        num_workers=data.num_workers,
        seed=cfg.seed,
        on_invalid_utf8=data.on_invalid_utf8,
        groups=groups,
        temperature=data.temperature,
        tgt_langs=sorted(set(tgt_langs)),
        shortlist=None if data.shortlist is None else to_dict(data.shortlist),
    )
