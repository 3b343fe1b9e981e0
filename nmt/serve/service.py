"""TranslationService: a Translator behind the batcher, with the JSON shape of its answers.

Each batch is one `Translator.translate` call with the search parameters its requests share,
so a segment's translation is what `translate` writes for that line (the translator's
output does not depend on which lines share its batch).
"""

from __future__ import annotations

import copy
import logging
from concurrent.futures import Future
from dataclasses import asdict, replace
from typing import Any

import torch

from nmt.data.multilingual import lang_tag
from nmt.search.strategy import SearchConfig
from nmt.serve.batcher import Batcher
from nmt.serve.request import Defaults, TranslateRequest, parse_request
from nmt.serve.settings import ServeConfig
from nmt.translator import Translation, Translator

log = logging.getLogger("nmt.serve")
ATTENTION_DECIMALS = 4  # attention weights in answers (enough for a heatmap)


class TranslationService:
    """Checks requests, batches them, translates, and shapes the answers.

    Args:
        translator: the loaded model(s); its `tgt_lang` is the default output language.
        search: the default search (beam size, penalties, length limit).
        settings: limits and batching.
        batch_tokens: the translator's padded-token budget per internal batch.
        threads: torch intra-op threads of the worker thread (None: leave torch's setting).
    """

    def __init__(
        self,
        translator: Translator,
        search: SearchConfig,
        settings: ServeConfig,
        *,
        batch_tokens: int,
        threads: int | None = None,
    ) -> None:
        self.search = search
        self.settings = settings
        self.batch_tokens = batch_tokens
        self.threads = threads
        languages = target_languages(translator)
        self.translators = {lang: _into(translator, lang) for lang in languages}
        self.defaults = Defaults(translator.tgt_lang, tuple(languages), search.beam_size)
        self.batcher = Batcher(
            self.translate_batch,
            max_wait_s=settings.max_wait_ms / 1000,
            max_batch_segments=settings.max_batch_segments,
            max_queued_requests=settings.max_queued_requests,
        )
        self._source = translator

    def info(self) -> dict[str, Any]:
        """What `GET /info` answers: languages, vocabulary sizes, defaults and limits."""
        translator = self._source
        return {
            "src_lang": translator.src_lang,
            "tgt_lang": self.defaults.tgt_lang,
            "languages": list(self.defaults.languages),
            "multilingual": translator.multilingual,
            "vocab_size": {
                "src": translator.src_tokenizer.vocab_size,
                "tgt": translator.tgt_tokenizer.vocab_size,
            },
            "max_src_tokens": translator.max_src_tokens,
            "search": asdict(self.search),
            "limits": asdict(self.settings),
        }

    def parse(self, body: bytes) -> TranslateRequest:
        """The checked request (raises `RequestError`)."""
        return parse_request(body, self.settings, self.defaults)

    def submit(self, request: TranslateRequest) -> Future:
        """Queue a request; the future gets one JSON value per segment."""
        return self.batcher.submit(request.key, request.text)

    def translate_batch(self, key: tuple[str, int, int, bool], segments: list[str]) -> list[Any]:
        """One translate call for `segments` (the batch of requests sharing `key`)."""
        tgt_lang, beam_size, nbest, attention = key
        if self.threads is not None and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)  # the setting is per thread: this is the worker
        results = self.translators[tgt_lang].translate(
            segments,
            replace(self.search, beam_size=beam_size),
            batch_tokens=self.batch_tokens,
            nbest=nbest,
            return_attn=attention,
        )
        truncated = sum(r.truncated for r in results)
        if truncated:
            log.warning(
                "%d segment(s) longer than max_src_tokens=%d pieces were truncated",
                truncated,
                self._source.max_src_tokens,
            )
        return [answer(r, nbest, attention) for r in results]


def answer(result: Translation, nbest: int, attention: bool) -> Any:
    """A segment's JSON value: its text; a list of {text, score} with nbest > 1; with
    `attention`, an object with the pieces and the (target x source) attention matrix."""
    if attention:
        matrix = [] if result.attn is None else result.attn.float().tolist()
        return {
            "text": result.text,
            "score": result.score,
            "src_pieces": result.src_pieces,
            "tgt_pieces": result.tgt_pieces,
            "attention": [[round(w, ATTENTION_DECIMALS) for w in row] for row in matrix],
        }
    if nbest > 1:
        return [{"text": text, "score": score} for text, score in result.nbest]
    return result.text


def target_languages(translator: Translator) -> list[str]:
    """The languages `translator` can translate into.

    A multilingual model knows each of its target languages by a `<2xx>` piece of its
    source vocabulary (user-defined symbols added for exactly those languages in training).
    """
    if not translator.multilingual:
        return [translator.tgt_lang]
    tokenizer = translator.src_tokenizer
    pieces = tokenizer.id_to_pieces(list(range(tokenizer.vocab_size)))
    return sorted(piece[2:-1] for piece in pieces if lang_tag(piece[2:-1]) == piece)


def _into(translator: Translator, lang: str) -> Translator:
    """`translator` translating into `lang` (the model and tokenizers are shared)."""
    if lang == translator.tgt_lang:
        return translator
    other = copy.copy(translator)
    other.tgt_lang = lang
    return other
