"""`translate` task: a file or stdin through a checkpoint, one output line per input line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from omegaconf import DictConfig
from tqdm import tqdm

from nmt.data.corpus import decode_utf8, read_lines, split_lines
from nmt.search.config import SearchConfig
from nmt.tasks.config import to_dict
from nmt.translator import Translation, Translator
from nmt.utils.io import atomic_write_lines
from nmt.utils.plot import plot_attention


def read_input(path: str | None) -> list[str]:
    """Lines of the input file, or of stdin when `path` is None (split on "\\n" only)."""
    if path is None:
        return split_lines(decode_utf8(sys.stdin.buffer.read(), "<stdin>"))
    return read_lines(path, allow_empty=True)


def write_output(path: str | None, lines: list[str]) -> None:
    """Write lines atomically to `path`, or to stdout when it is None."""
    if path is not None:
        atomic_write_lines(path, lines)
        return
    sys.stdout.buffer.write("".join(line + "\n" for line in lines).encode("utf-8"))
    sys.stdout.flush()


def format_nbest(results: list[Translation]) -> list[str]:
    return [
        f"{line}\t{rank}\t{score:.4f}\t{text}"
        for line, result in enumerate(results)
        for rank, (text, score) in enumerate(result.nbest)
    ]


def format_alignment(result: Translation) -> str:
    """Pharaoh format "i-j": source piece i is the most attended for target piece j."""
    if result.attn is None or not result.tgt_pieces:
        return ""
    best_src = result.attn.argmax(dim=-1).tolist()  # (T,)
    return " ".join(f"{i}-{j}" for j, i in enumerate(best_src))


def translate(cfg: DictConfig) -> None:
    """Translate `input` (or stdin) into `output` (or stdout) with the checkpoint `ckpt`."""
    torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
    search = SearchConfig(**to_dict(cfg.search))
    translator = Translator.from_checkpoint(
        cfg.ckpt,
        device=cfg.device,
        quantize=cfg.quantize,
        max_src_tokens=cfg.max_src_tokens,
        tgt_lang=cfg.tgt_lang,
    )
    if cfg.align and cfg.output is None and cfg.align_output is None:
        raise ValueError("align=true with output on stdout needs align_output=PATH")
    lines = read_input(cfg.input)
    show = bool(cfg.progress) and cfg.input is not None
    with tqdm(total=len(lines), file=sys.stderr, disable=not show, unit="line") as bar:
        results = translator.translate(
            lines,
            search,
            batch_tokens=cfg.batch_tokens,
            nbest=cfg.nbest,
            return_attn=bool(cfg.align or cfg.plot.lines),
            progress=bar.update,
        )
    truncated = sum(r.truncated for r in results)
    if truncated:
        print(
            f"warning: {truncated} input line(s) longer than max_src_tokens={cfg.max_src_tokens} "
            "pieces were truncated before translation",
            file=sys.stderr,
        )
    texts = format_nbest(results) if cfg.nbest > 1 else [r.text for r in results]
    write_output(cfg.output, texts)
    if cfg.align:
        align_path = cfg.align_output or f"{cfg.output}.align"
        atomic_write_lines(align_path, [format_alignment(r) for r in results])
    if cfg.plot.lines:
        plot_dir = Path(cfg.plot.dir or Path(cfg.paths.output_dir) / "plots")
        for index in cfg.plot.lines:
            if not 0 <= index < len(results):
                raise ValueError(
                    f"plot.lines: {index} is not an input line (0..{len(results) - 1})"
                )
            result = results[index]
            plot_attention(
                result.attn, result.src_pieces, result.tgt_pieces, plot_dir / f"line{index}.png"
            )
        print(f"attention plots: {plot_dir}", file=sys.stderr)
