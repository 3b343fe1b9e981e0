"""`translate` task: a file or stdin through a checkpoint, one output line per input line.

The input is streamed in chunks of `chunk_lines` lines (each chunk is length-sorted and
batched by the translator, and its results written in input order), so memory does not grow
with the input's length. File outputs (`output`, the alignment file) are written to a
temporary sibling and renamed when the whole input is done: a failed run never leaves a
partial file under the final name. stdout receives each chunk as soon as it is translated.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO

import torch
from omegaconf import DictConfig
from tqdm import tqdm

from nmt.data.compressed import open_binary
from nmt.data.corpus import Utf8Decoder, read_line_chunks
from nmt.search.strategy import SearchConfig
from nmt.tasks.hydra_setup import typed_dict
from nmt.tasks.translator_setup import TranslatorConfig, build_translator, warn_truncated
from nmt.translator import Translation
from nmt.utils.io import atomic_open, naming_errors
from nmt.utils.plot import plot_attention


@contextlib.contextmanager
def open_input(path: str | None) -> Iterator[BinaryIO]:
    """The input file opened in binary mode (decompressed: .gz/.bz2/.xz), or stdin's bytes."""
    if path is None:
        yield sys.stdin.buffer
        return
    with open_binary(path) as handle:
        yield handle


@contextlib.contextmanager
def open_output(path: str | None) -> Iterator[IO[str]]:
    """An atomic file writer for `path`, or a "\\n"-terminated UTF-8 view of stdout."""
    if path is not None:
        with atomic_open(path) as handle:
            yield handle
        return
    stdout = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n")
    try:
        yield stdout
    finally:
        stdout.detach()  # flushes; sys.stdout itself stays open


def write_lines(handle: IO[str], name: str, lines: list[str]) -> None:
    """Write and flush "\\n"-terminated lines; a failed write names the file (`name`)."""
    with naming_errors(name):
        handle.writelines(line + "\n" for line in lines)
        handle.flush()


def format_nbest(results: list[Translation], first_line: int = 0) -> list[str]:
    """TSV rows "line<TAB>rank<TAB>score<TAB>text"; `first_line` is results[0]'s line index.

    A tab inside a candidate becomes a space (as line breaks do in every translation), so
    each row has exactly four columns whatever the model writes.
    """
    return [
        "\t".join((str(first_line + line), str(rank), f"{score:.4f}", text.replace("\t", " ")))
        for line, result in enumerate(results)
        for rank, (text, score) in enumerate(result.nbest)
    ]


def format_alignment(result: Translation) -> str:
    """Pharaoh format "i-j": source piece i is the most attended for target piece j."""
    if result.attn is None or not result.tgt_pieces:
        return ""
    best_src = result.attn.argmax(dim=-1).tolist()  # (T,)
    return " ".join(f"{i}-{j}" for j, i in enumerate(best_src))


def _plot(cfg: DictConfig, results: list[Translation], first_line: int) -> None:
    """Draw the heatmaps of the `plot.lines` (global 0-based indices) that fall in this chunk."""
    for index in cfg.plot.lines:
        if first_line <= index < first_line + len(results):
            result, path = results[index - first_line], _plot_dir(cfg) / f"line{index}.png"
            plot_attention(result.attn, result.src_pieces, result.tgt_pieces, path)


def _plot_dir(cfg: DictConfig) -> Path:
    return Path(cfg.plot.dir or Path(cfg.paths.output_dir) / "plots")


def _check_options(cfg: DictConfig) -> None:
    if cfg.align and cfg.output is None and cfg.align_output is None:
        raise ValueError("align=true with output on stdout needs align_output=PATH")
    negative = [index for index in cfg.plot.lines if index < 0]
    if negative:
        raise ValueError(f"plot.lines: {negative[0]} is not an input line (0-based)")


def translate(cfg: DictConfig) -> None:
    """Translate `input` (or stdin) into `output` (or stdout) with the checkpoint `ckpt`."""
    torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
    search = SearchConfig(**typed_dict(cfg.search, SearchConfig, "search"))
    settings = TranslatorConfig.from_config(cfg)
    _check_options(cfg)
    decoder = Utf8Decoder(cfg.input or "<stdin>", settings.on_invalid_utf8)
    translator = build_translator(cfg.ckpt, settings)
    done = truncated = 0
    show = settings.progress and cfg.input is not None
    with contextlib.ExitStack() as stack:
        stack.callback(translator.close)
        source = stack.enter_context(open_input(cfg.input))
        out = stack.enter_context(open_output(cfg.output))
        align_path = cfg.align_output or f"{cfg.output}.align"
        align = stack.enter_context(atomic_open(align_path)) if cfg.align else None
        bar = stack.enter_context(tqdm(file=sys.stderr, disable=not show, unit="line"))
        for lines in read_line_chunks(source, decoder, cfg.chunk_lines):
            results = translator.translate(
                lines,
                search,
                batch_tokens=settings.batch_tokens,
                nbest=cfg.nbest,
                return_attn=bool(cfg.align or cfg.plot.lines),
                progress=bar.update,
            )
            texts = format_nbest(results, done) if cfg.nbest > 1 else [r.text for r in results]
            write_lines(out, cfg.output or "<stdout>", texts)
            if align is not None:
                write_lines(align, align_path, [format_alignment(r) for r in results])
            _plot(cfg, results, done)
            done += len(results)
            truncated += sum(r.truncated for r in results)
        missing = [index for index in cfg.plot.lines if index >= done]
        if missing:  # raised before the outputs are committed: a failed run leaves no file
            raise ValueError(f"plot.lines: {missing[0]} is not an input line (0..{done - 1})")
    _report(cfg, settings, decoder, truncated)


def _report(
    cfg: DictConfig, settings: TranslatorConfig, decoder: Utf8Decoder, truncated: int
) -> None:
    """Warnings on stderr: replaced invalid UTF-8, truncated lines, where the plots went."""
    if decoder.summary():
        print(f"warning: {decoder.summary()}", file=sys.stderr)
    warn_truncated(truncated, settings)
    if cfg.plot.lines:
        print(f"attention plots: {_plot_dir(cfg)}", file=sys.stderr)
