"""Translator: text in, text out, from a self-contained checkpoint (no Hydra, no Trainer)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from nmt.checkpoint import (
    CheckpointMeta,
    check_same_vocabulary,
    load_checkpoint,
    model_from_checkpoint,
)
from nmt.data.multilingual import tag_line
from nmt.data.shortlist import Shortlist
from nmt.decode_pool import DecodePool
from nmt.model.ensemble import EnsembleModel
from nmt.model.output_subset import ShortlistModel
from nmt.model.quantize import quantize_int8
from nmt.model.seq2seq import Seq2Seq
from nmt.search import Hypotheses
from nmt.search.strategy import SearchConfig, run_search
from nmt.tokenizer import SpecialIds, SpmTokenizer

# Line ends for str.splitlines and many other tools: a translation never contains one.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_TO_SPACE = str.maketrans(dict.fromkeys(LINE_BREAKS, " "))


@dataclass
class Translation:
    """One input line's result: the best translation, and what was asked for besides.

    Attributes:
        text: the best translation, on one line ("" for an empty input line).
        score: its search score (the GNMT score with beam search, the log-probability with
            greedy search; 0.0 for an empty line).
        src_pieces: the source pieces translated (after truncation and language tag).
        nbest: the `nbest` best (text, score) pairs, best first (just the best by default).
        tgt_pieces: the pieces of the best translation.
        attn: its attention, (len(tgt_pieces), len(src_pieces)), with `return_attn=True`
            only; None otherwise.
        truncated: the line was longer than `max_src_tokens` pieces and was cut.
    """

    text: str
    score: float
    src_pieces: list[str]
    nbest: list[tuple[str, float]]
    tgt_pieces: list[str]
    attn: torch.Tensor | None
    truncated: bool


class Translator:
    """Translate lists of lines with a trained model.

    From Python: `Translator.from_checkpoint(path).translate(lines)` gives one `Translation`
    per line (`.text`, `.score`), with beam 5 GNMT scoring unless a `SearchConfig` is passed;
    `Translator.from_checkpoint([a, b, c])` decodes with the ensemble of the three models
    (`nmt.model.ensemble`).

    Args:
        models: the network, or the members of an ensemble (eval mode, same vocabularies).
        src_tokenizer: SentencePiece model of the source side.
        tgt_tokenizer: SentencePiece model of the target side (may be the same object).
        special: special token ids.
        src_lang: source language code.
        tgt_lang: target language code.
        max_src_tokens: longer inputs are truncated to this many pieces (and reported).
        multilingual: the model is asked for `tgt_lang` by a <2tgt_lang> tag on each source.
        shortlists: one shortlist per model, or None. When given, each sentence may only
            produce the target pieces of its own shortlist (`Shortlist.allowed`; for an
            ensemble, the union of the members' shortlists), and each batch scores their union
            instead of all V pieces.
        workers: decode the batches of each `translate` call in this many forked
            single-threaded processes (`nmt.decode_pool`, CPU only); 1 decodes in this process
            with its intra-op threads. The output is that of one process with one thread.
        attention_chunk_kib: on the CPU, each decoding step computes the attention scores in
            blocks of about this many KiB (`BahdanauAttention.chunk_bytes`); None: in one
            pass. The translations are the same either way.
    """

    def __init__(
        self,
        models: Seq2Seq | Sequence[Seq2Seq],
        src_tokenizer: SpmTokenizer,
        tgt_tokenizer: SpmTokenizer,
        special: SpecialIds,
        *,
        src_lang: str,
        tgt_lang: str,
        max_src_tokens: int = 250,
        multilingual: bool = False,
        shortlists: Sequence[Shortlist] | None = None,
        workers: int = 1,
        attention_chunk_kib: int | None = None,
    ) -> None:
        self.models = (models,) if isinstance(models, Seq2Seq) else tuple(models)
        if not self.models:
            raise ValueError("ckpt: no checkpoint given")
        if shortlists is not None and len(shortlists) != len(self.models):
            raise ValueError(f"{len(shortlists)} shortlists for {len(self.models)} models")
        self.src_tokenizer = src_tokenizer
        self.tgt_tokenizer = tgt_tokenizer
        self.special = special
        self.src_lang = src_lang
        self.tgt_lang = tgt_lang
        self.max_src_tokens = max_src_tokens
        self.multilingual = multilingual
        self.shortlists = None if shortlists is None else tuple(shortlists)
        self.device = next(self.models[0].parameters()).device
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        if workers > 1 and self.device.type != "cpu":
            raise ValueError(f"workers={workers} decodes on the CPU only (set workers=1)")
        self.workers = workers
        if attention_chunk_kib is not None and self.device.type == "cpu":
            for model in self.models:
                model.decoder.attention.chunk_bytes = attention_chunk_kib * 1024
        self._pool: DecodePool | None = None

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path | Sequence[str | Path],
        *,
        device: str = "cpu",
        quantize: str | None = None,
        tgt_lang: str | None = None,
        shortlist: bool = True,
        **kwargs: Any,
    ) -> Translator:
        """Rebuild model and tokenizers from a checkpoint; `quantize="int8"` for CPU int8.

        A list of paths builds an ensemble (`nmt.model.ensemble`): every model is loaded (and
        quantised) the same way, the tokenizers and languages come from the first checkpoint,
        and checkpoints whose vocabularies differ from the first's are refused.
        `tgt_lang` picks the output language of a multilingual checkpoint (required there);
        for a bilingual one it may only name the language the checkpoint translates into.
        `shortlist` decodes over the checkpoints' shortlists: the union of the members'
        shortlists, or none if any member lacks one.
        """
        paths = [path] if isinstance(path, str | Path) else list(path)
        if quantize not in (None, "int8"):
            raise ValueError(f"quantize must be null or int8, got {quantize!r}")
        if not isinstance(shortlist, bool):
            raise ValueError(f"shortlist must be true or false, got {shortlist!r}")
        if quantize == "int8" and device != "cpu":
            raise ValueError("quantize=int8 runs on the CPU only (set device=cpu)")
        if not paths:
            raise ValueError("ckpt: no checkpoint given")
        metas, models = [], []
        for member in paths:
            checkpoint = load_checkpoint(member)
            metas.append(CheckpointMeta.from_checkpoint(checkpoint))
            check_same_vocabulary(paths[0], metas[0], member, metas[-1])
            model = model_from_checkpoint(checkpoint)
            models.append((quantize_int8(model) if quantize == "int8" else model).to(device))
        meta = metas[0]
        src_tok = SpmTokenizer.from_bytes(meta.src_spm)
        same = meta.tgt_spm == meta.src_spm
        tgt_tok = src_tok if same else SpmTokenizer.from_bytes(meta.tgt_spm)
        targets = list(meta.tgt_langs)
        tables = [m.shortlist for m in metas]
        use_shortlists = shortlist and all(table is not None for table in tables)
        return cls(
            models,
            src_tok,
            tgt_tok,
            meta.hparams.special,
            src_lang=meta.src_lang,
            tgt_lang=output_language(paths[0], meta.tgt_lang, targets, tgt_lang),
            multilingual=bool(targets),
            shortlists=[Shortlist.from_dict(t) for t in tables] if use_shortlists else None,
            **kwargs,
        )

    def translate(
        self,
        lines: list[str],
        search: SearchConfig | None = None,
        *,
        batch_tokens: int = 4000,
        nbest: int = 1,
        return_attn: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> list[Translation]:
        """Translate every line; the result has exactly one entry per line, in order.

        Lines that encode to no piece (empty or whitespace-only) give "" without decoding.

        Args:
            lines: input sentences (one per line, no "\\n" inside).
            search: beam size, GNMT penalties and length limit; default `SearchConfig()`
                (beam 5, len_alpha 0.6, cov_beta 0.1, as `conf/search/beam5.yaml`).
            batch_tokens: budget per batch in padded source tokens times beam size.
            nbest: candidates to keep per line (<= beam size).
            return_attn: keep each best hypothesis' attention matrix.
            progress: called with the number of lines finished after each batch.
        """
        if isinstance(lines, str):
            raise ValueError("translate takes a list of lines, got one str (pass [text])")
        search = SearchConfig() if search is None else search
        if not 1 <= nbest <= search.beam_size:
            raise ValueError(f"nbest={nbest} must be in [1, search.beam_size={search.beam_size}]")
        ids = self._encode(lines)
        truncated = [len(x) > self.max_src_tokens for x in ids]
        ids = [x[: self.max_src_tokens] for x in ids]
        results: list[Translation | None] = [None] * len(lines)
        empty = [i for i, x in enumerate(ids) if not x]
        for index in empty:
            blank = [("", 0.0)] * nbest
            results[index] = Translation("", 0.0, [], blank, [], None, truncated[index])
        if progress is not None and empty:
            progress(len(empty))
        batches = list(length_sorted_batches(ids, batch_tokens // search.beam_size))
        jobs = [
            ([ids[i] for i in batch], [truncated[i] for i in batch], search, nbest, return_attn)
            for batch in batches
        ]
        for batch, translations in zip(batches, self._decode_all(jobs), strict=True):
            for index, translation in zip(batch, translations, strict=True):
                results[index] = translation
            if progress is not None:
                progress(len(batch))
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def _encode(self, lines: list[str]) -> list[list[int]]:
        """Source ids of each line, with the <2tgt_lang> tag when multilingual."""
        ids = self.src_tokenizer.encode(lines)
        if self.multilingual:  # tag the lines that have content; empty ones stay empty
            tagged = [i for i, x in enumerate(ids) if x]
            encoded = self.src_tokenizer.encode([tag_line(lines[i], self.tgt_lang) for i in tagged])
            for index, x in zip(tagged, encoded, strict=True):
                ids[index] = x
        return ids

    def close(self) -> None:
        """Stop the decoding workers, if any were started (`workers` > 1)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def _decode_all(self, jobs: list[tuple]) -> Iterator[list[Translation]]:
        """`_decode(*job)` of every job, in order: here, or on the workers when `workers` > 1."""
        if self.workers == 1:
            return (self._decode(*job) for job in jobs)
        if self._pool is None:
            self._pool = DecodePool(self._decode, self.workers)
        return self._pool.map(jobs)

    def _decode(
        self,
        sources: list[list[int]],
        truncated: list[bool],
        search: SearchConfig,
        nbest: int,
        attn: bool,
    ) -> list[Translation]:
        """Translate one batch of source ids (each marked truncated or not)."""
        hyps = self._search(sources, search, nbest, attn)
        return [
            self._translation(src_ids, cands, nbest, cut)
            for src_ids, cands, cut in zip(sources, hyps.nbest, truncated, strict=True)
        ]

    @torch.inference_mode()
    def _search(
        self, sources: list[list[int]], search: SearchConfig, nbest: int, attn: bool
    ) -> Hypotheses:
        lengths = torch.tensor([len(x) for x in sources])
        src = torch.full((len(sources), int(lengths.max())), self.special.pad, dtype=torch.long)
        for row, src_ids in enumerate(sources):
            src[row, : lengths[row]] = torch.tensor(src_ids)
        src, lengths = src.to(self.device), lengths.to(self.device)
        model, subset = self._step_model(src, lengths)
        bos, eos = self.special.bos, self.special.eos
        if subset is not None:
            bos, eos = subset.position(bos), subset.position(eos)
        hyps = run_search(
            model, src, lengths, search, bos_id=bos, eos_id=eos, nbest=nbest, return_attn=attn
        )
        if subset is None:
            return hyps
        return Hypotheses(
            [[replace(h, tokens=subset.to_vocab(h.tokens)) for h in cands] for cands in hyps.nbest]
        )

    def _step_model(
        self, src: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[Seq2Seq | ShortlistModel | EnsembleModel, ShortlistModel | None]:
        """The model to search this batch with, and the shortlist whose ids it uses (if any).

        Every member of an ensemble gets the same shortlist mask, so that their shortlist
        positions mean the same pieces.
        """
        members: list[Seq2Seq | ShortlistModel] = list(self.models)
        subset = None
        if self.shortlists is not None:
            special = (self.special.bos, self.special.eos, self.special.unk)
            allowed = self.allowed(src, lengths, special)  # (B, V)
            members = [ShortlistModel(model, allowed, special) for model in self.models]
            subset = members[0]
        return (members[0] if len(members) == 1 else EnsembleModel(members)), subset

    def allowed(
        self, src: torch.Tensor, lengths: torch.Tensor, always: tuple[int, ...]
    ) -> torch.Tensor:
        """(B, V) bool: the pieces each sentence may produce, by the union of the shortlists."""
        assert self.shortlists is not None
        mask = self.shortlists[0].allowed(src, lengths, always)
        for shortlist in self.shortlists[1:]:
            mask |= shortlist.allowed(src, lengths, always)
        return mask

    def _translation(
        self, src_ids: list[int], cands: list, nbest: int, truncated: bool
    ) -> Translation:
        texts = [one_line(t) for t in self.tgt_tokenizer.decode([c.tokens for c in cands])]
        best = cands[0]
        return Translation(
            text=texts[0],
            score=best.score,
            src_pieces=self.src_tokenizer.id_to_pieces(src_ids),
            nbest=[(t, c.score) for t, c in zip(texts, cands, strict=True)][:nbest],
            tgt_pieces=self.tgt_tokenizer.id_to_pieces(best.tokens),
            attn=best.attn,
            truncated=truncated,
        )


def output_language(path: str | Path, trained: str, targets: list[str], wanted: str | None) -> str:
    """The language to translate into, checked against what the checkpoint was trained for.

    Args:
        path: the checkpoint (named in errors).
        trained: its `tgt_lang` (a name such as "multi" for a multilingual model).
        targets: the languages a multilingual checkpoint has tags for; [] when bilingual.
        wanted: the `tgt_lang` asked for, or None.
    """
    if targets:
        if wanted is None or wanted not in targets:
            asked = "no tgt_lang given" if wanted is None else f"tgt_lang={wanted} is not known"
            raise ValueError(
                f"ckpt: {path} is multilingual and translates into {', '.join(targets)}: "
                f"{asked} (set tgt_lang=one of them)"
            )
        return wanted
    if wanted is not None and wanted != trained:
        raise ValueError(f"tgt_lang={wanted}: ckpt {path} only translates into {trained}")
    return trained


def one_line(text: str) -> str:
    """Keep a translation on one output line: every line break in LINE_BREAKS becomes a space.

    Input lines end at "\\n" only, but a decoded "\\r" or U+2028 would split the output
    line for `str.splitlines`, editors and other tools.
    """
    return text.translate(_TO_SPACE)


def length_sorted_batches(ids: list[list[int]], budget: int) -> Iterator[list[int]]:
    """Yield batches of line indices sorted by length, each within `budget` padded tokens.

    Empty inputs are skipped (the caller fills them). A line longer than the budget gets
    a batch of its own.
    """
    order = sorted((i for i, x in enumerate(ids) if x), key=lambda i: len(ids[i]), reverse=True)
    batch: list[int] = []
    for index in order:
        longest = len(ids[batch[0]]) if batch else len(ids[index])
        if batch and (len(batch) + 1) * longest > max(budget, 1):
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch
