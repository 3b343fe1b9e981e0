"""The body of `POST /translate`, checked field by field; every refusal is one line.

    {"text": [segments], "tgt_lang"?: str, "beam_size"?: int, "nbest"?: int, "attention"?: bool}

A segment is one line of input, as `translate` reads it: it may not contain "\\n".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nmt.serve.settings import ServeConfig

FIELDS = ("text", "tgt_lang", "beam_size", "nbest", "attention")


class RequestError(Exception):
    """A request the server refuses: the HTTP status and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Defaults:
    """What a request gets for the fields it leaves out, and what it may ask for."""

    tgt_lang: str
    languages: tuple[str, ...]
    beam_size: int


@dataclass(frozen=True)
class TranslateRequest:
    """A checked request; `key` is what one batch must share."""

    text: list[str]
    tgt_lang: str
    beam_size: int
    nbest: int
    attention: bool

    @property
    def key(self) -> tuple[str, int, int, bool]:
        return (self.tgt_lang, self.beam_size, self.nbest, self.attention)


def parse_request(body: bytes, limits: ServeConfig, defaults: Defaults) -> TranslateRequest:
    """Decode and check a request body.

    Raises:
        RequestError: 413 past a size limit, 400 for bytes that are not UTF-8 JSON,
            422 for a JSON value that is not a valid request.
    """
    if len(body) > limits.max_body_bytes:
        raise RequestError(
            413, f"request body exceeds serve.max_body_bytes={limits.max_body_bytes}"
        )
    data = _json(body)
    if not isinstance(data, dict):
        raise RequestError(422, f"the body must be a JSON object, got {_kind(data)}")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise RequestError(422, f"unknown key {unknown[0]!r} (known: {', '.join(FIELDS)})")
    text = _segments(data.get("text"), limits)
    beam_size = _integer(data, "beam_size", defaults.beam_size, limits.max_beam_size)
    nbest = _integer(data, "nbest", 1, beam_size)
    attention = data.get("attention", False)
    if not isinstance(attention, bool):
        raise RequestError(422, f"attention must be true or false, got {_kind(attention)}")
    if attention and nbest > 1:
        raise RequestError(422, "attention is given for nbest=1 only")
    return TranslateRequest(text, _language(data, defaults), beam_size, nbest, attention)


def _json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RequestError(400, f"request body is not valid UTF-8 (byte {err.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise RequestError(
            400, f"invalid JSON: {err.msg} (line {err.lineno} column {err.colno})"
        ) from None


def _segments(text: Any, limits: ServeConfig) -> list[str]:
    if not isinstance(text, list):
        raise RequestError(422, f"text must be a list of strings, got {_kind(text)}")
    if len(text) > limits.max_segments:
        raise RequestError(
            413, f"{len(text)} segments exceed serve.max_segments={limits.max_segments}"
        )
    for index, segment in enumerate(text):
        _check_segment(index, segment, limits.max_segment_chars)
    return text


def _check_segment(index: int, segment: Any, max_chars: int) -> None:
    if not isinstance(segment, str):
        raise RequestError(422, f"text[{index}] must be a string, got {_kind(segment)}")
    if len(segment) > max_chars:
        raise RequestError(
            413,
            f"text[{index}] has {len(segment)} characters, "
            f"over serve.max_segment_chars={max_chars}",
        )
    if "\n" in segment:
        raise RequestError(422, f"text[{index}] contains a line break (send one line per segment)")
    try:  # JSON escapes can spell lone surrogates, which are not text
        segment.encode("utf-8")
    except UnicodeEncodeError as err:
        raise RequestError(
            422, f"text[{index}] is not valid Unicode (lone surrogate at {err.start})"
        ) from None


def _integer(data: dict, key: str, default: int, largest: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= largest:
        bound = "serve.max_beam_size" if key == "beam_size" else "beam_size"
        raise RequestError(
            422, f"{key} must be an integer in [1, {bound}={largest}], got {json.dumps(value)}"
        )
    return value


def _language(data: dict, defaults: Defaults) -> str:
    lang = data.get("tgt_lang")
    if lang is None:
        return defaults.tgt_lang
    if not isinstance(lang, str):
        raise RequestError(422, f"tgt_lang must be a string, got {_kind(lang)}")
    if lang not in defaults.languages:
        known = ", ".join(defaults.languages)
        raise RequestError(
            422, f"tgt_lang={lang!r} is not known (this model translates into {known})"
        )
    return lang


def _kind(value: Any) -> str:
    """The JSON type name of `value`."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")
