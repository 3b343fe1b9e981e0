"""Property tests: whatever the lines, translate writes exactly one output line per input line,
in input order, from a file or from stdin, and no output line holds a line break."""

from __future__ import annotations

import io
import itertools
import sys
import types

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nmt.data.corpus import Utf8Decoder
from nmt.search.strategy import SearchConfig
from nmt.tasks.hydra_setup import to_dict
from nmt.tasks.translate import translate
from nmt.translator import LINE_BREAKS, Translator, one_line
from tests.conftest import compose_config

SPECIAL_LINES = [
    "",
    "   \t  ",
    "\u3000\u00a0",
    "a\rb",
    "Zeile\u2028mit\u2029Trennern\u0085",
    "vt\x0bff\x0cfs\x1cgs\x1drs\x1e",
    "e\u0301\u0308\u20dd combining",
    "x" * 10_000,
    " ".join(["Und Gott sah das Licht"] * 2000),
]
lines_strategy = st.lists(
    st.one_of(
        st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=60),
        st.sampled_from(SPECIAL_LINES),
    ),
    max_size=6,
)
SETTINGS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def run_translate(tiny_checkpoint, tmp_path_factory):
    """Translate bytes through the task, from a file or stdin; return the output bytes."""
    root = tmp_path_factory.mktemp("props")
    base = ["search=greedy", "threads=1", "chunk_lines=2", "progress=false"]

    def run(data: bytes, use_stdin: bool, *overrides: str) -> bytes:
        src, out = root / "in.txt", root / "out.txt"
        if use_stdin:
            stdout = io.BytesIO()
            streams = {"stdin": io.BytesIO(data), "stdout": stdout}
            with pytest.MonkeyPatch.context() as patch:
                for name, stream in streams.items():
                    patch.setattr(sys, name, types.SimpleNamespace(buffer=stream))
                translate(compose_config("translate", root, [ckpt(), *base, *overrides]))
            return stdout.getvalue()
        src.write_bytes(data)
        io_keys = [f"input={src}", f"output={out}"]
        translate(compose_config("translate", root, [ckpt(), *base, *io_keys, *overrides]))
        return out.read_bytes()

    def ckpt() -> str:
        return f"ckpt={tiny_checkpoint}"

    return run


@pytest.fixture(scope="module")
def alone(tiny_checkpoint, tmp_path_factory):
    """The translation of one line translated by itself."""
    translator = Translator.from_checkpoint(tiny_checkpoint)
    root = tmp_path_factory.mktemp("alone")
    greedy = SearchConfig(**to_dict(compose_config("translate", root, ["search=greedy"]).search))
    return lambda line: translator.translate([line], greedy)[0].text


def output_lines(output: bytes) -> list[str]:
    text = output.decode("utf-8")
    assert text == "" or text.endswith("\n")
    lines = text.split("\n")[:-1]
    # Tools that split on more than "\n" must see the same lines.
    assert text.splitlines() == lines
    return lines


@SETTINGS
@given(lines=lines_strategy, use_stdin=st.booleans(), final_newline=st.booleans())
def test_one_output_line_per_input_line_in_order(
    run_translate, alone, lines, use_stdin, final_newline
):
    data = "\n".join(lines) + ("\n" if final_newline and lines else "")
    hyps = output_lines(run_translate(data.encode("utf-8"), use_stdin))
    if lines and lines[-1] == "" and not final_newline:
        lines = lines[:-1]  # "a\n" + "" is the one line "a"; "" alone is no line at all
    assert hyps == [alone(line) for line in lines]


# Valid and invalid UTF-8 pieces, genuine U+FFFD among them (valid, never counted as replaced).
FRAGMENTS = [b"a", b"\xc3\xa9", b"\xef\xbf\xbd", b"\xff", b"\xc3", b"\xa9", b"\xe2\x82"]
raw_line = st.one_of(
    st.text(max_size=10).map(lambda t: t.replace("\n", "").encode("utf-8")),
    st.lists(st.sampled_from(FRAGMENTS), max_size=8).map(b"".join),
)
raw_lines = st.lists(raw_line, max_size=7)


@SETTINGS
@given(lines=raw_lines, use_stdin=st.booleans())
def test_invalid_utf8_is_an_error_naming_the_line_or_replaced(run_translate, lines, use_stdin):
    data = b"".join(line + b"\n" for line in lines)
    bad = [number for number, line in enumerate(lines, 1) if not is_utf8(line)]
    if bad:
        with pytest.raises(ValueError, match=f": line {bad[0]}: not valid UTF-8"):
            run_translate(data, use_stdin)
    replaced = output_lines(run_translate(data, use_stdin, "on_invalid_utf8=replace"))
    assert len(replaced) == len(lines)


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@settings(max_examples=200, deadline=None)
@given(data=st.lists(raw_line, max_size=5).map(b"\n".join))
def test_replacement_count_ignores_genuine_fffd(data):
    decoder = Utf8Decoder("f", "replace")
    decoder.decode(data)
    assert decoder.replaced == len(_replaced_runs(data))


def _replaced_runs(data: bytes) -> list[int]:
    """Offsets where Python's "replace" handler substitutes U+FFFD, found one error at a time."""
    runs, start = [], 0
    while True:
        try:
            data[start:].decode("utf-8")
            return runs
        except UnicodeDecodeError as err:
            runs.append(start + err.start)
            start += err.end


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.characters(codec="utf-8")))
def test_one_line_leaves_no_line_break(text):
    assert len(one_line(text).splitlines()) <= 1
    assert not set(one_line(text)) & set(LINE_BREAKS)


@SETTINGS
@given(
    decoded=st.lists(
        st.text(st.sampled_from([*LINE_BREAKS, "a", " ", "\u00e9"]), max_size=10),
        min_size=1,
        max_size=5,
    )
)
def test_decoded_line_breaks_never_split_output_lines(tiny_checkpoint, decoded):
    """Inject decoded translations holding line breaks: each is still one output line."""
    translator = Translator.from_checkpoint(tiny_checkpoint)
    texts = itertools.cycle(decoded)
    translator.tgt_tokenizer = types.SimpleNamespace(
        decode=lambda ids: [next(texts) for _ in ids],
        id_to_pieces=lambda ids: ["x"] * len(ids),
    )
    lines = ["Im Anfang schuf Gott die Himmel und die Erde."] * len(decoded)
    results = translator.translate(lines, SearchConfig(beam_size=1))
    output = "".join(result.text + "\n" for result in results)
    assert len(output.splitlines()) == len(lines)
