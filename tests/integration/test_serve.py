"""The server in-process (Starlette's TestClient): answers equal `translate`'s output line for
line, concurrent requests share translate calls, every bad request gets its status and the
server keeps serving. The tiny trained checkpoint of the session is served."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from nmt.data.corpus import read_lines
from nmt.tasks.serve import build_service
from nmt.tasks.translate import translate
from tests.integration.test_translate import NASTY

pytest.importorskip("starlette", reason="the serve extra is not installed")
from starlette.testclient import TestClient  # noqa: E402

from nmt.serve.app import create_app  # noqa: E402

LIMITS = [
    "serve.max_body_bytes=20000",
    "serve.max_segments=16",
    "serve.max_segment_chars=2000",
    "serve.max_beam_size=4",
]
OPTIONS = ["max_src_tokens=30", "search.beam_size=3", "threads=1"]  # 30: one NASTY line is cut


@pytest.fixture
def server(tiny_checkpoint, compose_cfg):
    """(make_client, service): make_client(*overrides) serves the tiny model in-process."""
    made = []

    def make_client(*overrides: str) -> TestClient:
        cfg = compose_cfg("serve", [f"ckpt={tiny_checkpoint}", *OPTIONS, *LIMITS, *overrides])
        service = build_service(cfg)
        client = TestClient(create_app(service)).__enter__()  # runs the lifespan (worker)
        made.append(client)
        return client, service

    yield make_client
    for client in made:
        client.__exit__(None, None, None)


def translated(compose_cfg, ckpt, tmp_path, lines, *overrides: str) -> list[str]:
    """What the translate task writes for `lines` (one output line per input line)."""
    src, out = tmp_path / "in.txt", tmp_path / "out.txt"
    src.write_bytes("".join(line + "\n" for line in lines).encode("utf-8"))
    cfg = compose_cfg(
        "translate",
        [f"ckpt={ckpt}", f"input={src}", f"output={out}", "progress=false", *OPTIONS, *overrides],
    )
    translate(cfg)
    return read_lines(out, allow_empty=True)


def post(client, body) -> tuple[int, dict]:
    response = client.post("/translate", json=body)
    return response.status_code, response.json()


def test_answers_equal_translate_for_nasty_lines(server, tiny_checkpoint, compose_cfg, tmp_path):
    client, _service = server()
    expected = translated(compose_cfg, tiny_checkpoint, tmp_path, NASTY)
    assert post(client, {"text": NASTY}) == (200, {"translations": expected})
    # One request per line, sent together: batched with each other, each still its own line.
    with ThreadPoolExecutor(len(NASTY)) as pool:
        answers = list(pool.map(lambda line: post(client, {"text": [line]}), NASTY))
    assert answers == [(200, {"translations": [hyp]}) for hyp in expected]


def test_beam_size_and_nbest_equal_translate(server, tiny_checkpoint, compose_cfg, tmp_path):
    client, _service = server()
    lines = NASTY[:4]
    greedy = translated(compose_cfg, tiny_checkpoint, tmp_path, lines, "search.beam_size=1")
    assert post(client, {"text": lines, "beam_size": 1}) == (200, {"translations": greedy})
    rows = translated(
        compose_cfg, tiny_checkpoint, tmp_path, lines, "nbest=2"
    )  # line rank score text
    status, body = post(client, {"text": lines, "nbest": 2})
    assert status == 200
    got = [
        f"{line}\t{rank}\t{cand['score']:.4f}\t{cand['text']}"
        for line, cands in enumerate(body["translations"])
        for rank, cand in enumerate(cands)
    ]
    assert got == rows


def test_attention_matches_the_translator(server, tiny_checkpoint):
    import torch

    from nmt.search.strategy import SearchConfig
    from nmt.translator import Translator

    client, _service = server()
    line = "Im Anfang schuf Gott die Himmel und die Erde."
    status, body = post(client, {"text": [line, ""], "attention": True})
    assert status == 200
    result = Translator.from_checkpoint(tiny_checkpoint, max_src_tokens=30).translate(
        [line], SearchConfig(beam_size=3), return_attn=True
    )[0]
    first, empty = body["translations"]
    assert (first["text"], first["src_pieces"], first["tgt_pieces"]) == (
        result.text,
        result.src_pieces,
        result.tgt_pieces,
    )
    torch.testing.assert_close(torch.tensor(first["attention"]), result.attn, rtol=0, atol=1e-4)
    assert empty == {"text": "", "score": 0.0, "src_pieces": [], "tgt_pieces": [], "attention": []}


def test_concurrent_requests_share_translate_calls(server, tiny_checkpoint, compose_cfg, tmp_path):
    # A long wait and a batch of exactly the number of requests: the batch fills and runs.
    client, service = server("serve.max_wait_ms=5000", "serve.max_batch_segments=8")
    lines = NASTY[:8]
    expected = translated(compose_cfg, tiny_checkpoint, tmp_path, lines)
    calls = count_calls(service)
    with ThreadPoolExecutor(len(lines)) as pool:
        answers = list(pool.map(lambda line: post(client, {"text": [line]}), lines))
    assert answers == [(200, {"translations": [hyp]}) for hyp in expected]
    assert sum(len(call) for call in calls) == len(lines)
    assert len(calls) < len(lines), calls  # requests were translated together


def test_different_search_parameters_are_never_mixed(server):
    client, service = server("serve.max_wait_ms=300")
    calls = count_calls(service, with_beam=True)
    bodies = [{"text": [f"Und Gott sprach {i}."], "beam_size": 1 + i % 2} for i in range(6)]
    with ThreadPoolExecutor(len(bodies)) as pool:
        assert all(status == 200 for status, _ in pool.map(lambda b: post(client, b), bodies))
    for beam, segments in calls:
        assert {int(s.split()[-1][:-1]) % 2 + 1 for s in segments} == {beam}


def count_calls(service, with_beam: bool = False) -> list:
    """Record the segments (and beam size) of every translate call the service makes."""
    calls: list = []
    for translator in service.translators.values():
        original = translator.translate

        def counting(lines, search, *args, _original=original, **kwargs):
            calls.append((search.beam_size, list(lines)) if with_beam else list(lines))
            return _original(lines, search, *args, **kwargs)

        translator.translate = counting
    return calls


BAD = [
    (b"{not json", 400, "invalid JSON"),
    (b'{"text": ["caf\xe9"]}', 400, "not valid UTF-8"),
    (b"[1, 2]", 422, "must be a JSON object"),
    (b"{}", 422, "text must be a list of strings, got null"),
    (b'{"text": "a"}', 422, "text must be a list of strings, got string"),
    (b'{"text": ["a", 1]}', 422, "text[1] must be a string, got number"),
    (b'{"text": ["a\\nb"]}', 422, "text[0] contains a line break"),
    (b'{"text": ["\\ud800"]}', 422, "text[0] is not valid Unicode"),
    (b'{"text": ["a"], "beam": 2}', 422, "unknown key 'beam'"),
    (b'{"text": ["a"], "tgt_lang": "xx"}', 422, "tgt_lang='xx' is not known"),
    (b'{"text": ["a"], "tgt_lang": 3}', 422, "tgt_lang must be a string"),
    (b'{"text": ["a"], "beam_size": 0}', 422, "serve.max_beam_size=4"),
    (b'{"text": ["a"], "beam_size": 5}', 422, "max_beam_size=4], got 5"),
    (b'{"text": ["a"], "beam_size": "2"}', 422, 'got "2"'),
    (b'{"text": ["a"], "beam_size": true}', 422, "got true"),
    (b'{"text": ["a"], "beam_size": 2, "nbest": 3}', 422, "nbest must be an integer in [1, beam"),
    (b'{"text": ["a"], "attention": "yes"}', 422, "attention must be true or false"),
    (b'{"text": ["a"], "attention": true, "nbest": 2}', 422, "attention is given for nbest=1"),
    (json.dumps({"text": ["a"] * 17}).encode(), 413, "17 segments exceed serve.max_segments=16"),
    (json.dumps({"text": ["a" * 2001]}).encode(), 413, "serve.max_segment_chars=2000"),
    (json.dumps({"text": ["a" * 1500] * 14}).encode(), 413, "serve.max_body_bytes=20000"),
]


def test_every_bad_request_gets_its_status_and_the_server_goes_on(server):
    client, _service = server()
    status, good = post(client, {"text": NASTY[:2]})
    assert status == 200
    for body, status, reason in BAD:
        response = client.post("/translate", content=body)
        message = response.json()["error"]
        assert (response.status_code, reason in message) == (status, True), (body[:60], message)
        assert "\n" not in message
        assert post(client, {"text": NASTY[:2]}) == (200, good)
    assert client.get("/translate").status_code == 405
    assert client.get("/nowhere").json() == {"error": "Not Found"}


def test_full_queue_is_503_with_retry_after(server):
    client, service = server("serve.max_queued_requests=1", "serve.retry_after_s=7")
    gate, entered = threading.Event(), threading.Event()
    translator = service.translators["en"]
    original = translator.translate

    def blocked(*args, **kwargs):
        entered.set()
        assert gate.wait(30)
        return original(*args, **kwargs)

    translator.translate = blocked
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(post, client, {"text": ["eins"]})
        assert entered.wait(30)  # the worker holds the first request
        queued = pool.submit(post, client, {"text": ["zwei"]})
        while service.batcher.queued() < 1:
            threading.Event().wait(0.01)
        refused = client.post("/translate", json={"text": ["drei"]})
        gate.set()
        assert refused.status_code == 503 and refused.headers["retry-after"] == "7"
        assert "busy" in refused.json()["error"]
        assert running.result()[0] == 200 and queued.result()[0] == 200
    assert post(client, {"text": ["drei"]})[0] == 200


def test_a_failed_batch_fails_only_its_requests(server):
    client, service = server("serve.max_wait_ms=300")
    translator = service.translators["en"]
    original = translator.translate

    def failing(lines, *args, **kwargs):
        if "BOOM" in lines:
            raise RuntimeError("model exploded")
        return original(lines, *args, **kwargs)

    translator.translate = failing
    with ThreadPoolExecutor(2) as pool:
        bad = pool.submit(post, client, {"text": ["BOOM"], "beam_size": 1})
        good = pool.submit(post, client, {"text": ["Und Gott sprach."], "beam_size": 2})
        assert bad.result() == (500, {"error": "translation failed: RuntimeError: model exploded"})
        assert good.result()[0] == 200
    assert post(client, {"text": ["BOOM!"], "beam_size": 1})[0] == 200


def test_info_and_health(server):
    client, service = server()
    info = client.get("/info").json()
    assert info["languages"] == ["en"] and info["tgt_lang"] == "en"
    tokenizer = service.translators["en"].tgt_tokenizer
    assert info["vocab_size"]["tgt"] == tokenizer.vocab_size
    assert info["search"]["beam_size"] == 3 and info["limits"]["max_segments"] == 16
    assert client.get("/health").json() == {"status": "ok", "queued": 0}
    page = client.get("/")
    assert page.status_code == 200 and 'id="translation"' in page.text
    assert post(client, {"text": []}) == (200, {"translations": []})
