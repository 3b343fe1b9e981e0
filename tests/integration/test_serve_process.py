"""The server as a real process (`scripts/serve.py` under uvicorn): SIGTERM drains an in-flight
request and exits 0; the page at `/` translates in a real (headless) browser."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import threading
import time
import urllib.parse

import pytest

from nmt.search.strategy import SearchConfig
from nmt.tasks.bench.serve_phase import ServerProcess
from nmt.translator import Translator

httpx2 = pytest.importorskip("httpx2", reason="the serve extra is not installed")

LINE = "Im Anfang schuf Gott die Himmel und die Erde."
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def server_overrides(ckpt, tmp_path, *more: str) -> list[str]:
    return [f"ckpt={ckpt}", "threads=1", f"hydra.run.dir={tmp_path / 'run'}", *more]


def expected(ckpt, line: str) -> Translator:
    result = Translator.from_checkpoint(ckpt).translate([line], SearchConfig(), return_attn=True)
    return result[0]


def test_sigterm_drains_the_in_flight_request_then_exits_0(tiny_checkpoint, tmp_path):
    # The request waits 4 s in the batcher for companions: it is in flight when SIGTERM comes.
    overrides = server_overrides(tiny_checkpoint, tmp_path, "serve.max_wait_ms=4000")
    with ServerProcess(overrides) as server:
        answers: list = []
        slow = threading.Thread(
            target=lambda: answers.append(
                httpx2.post(f"{server.url}/translate", json={"text": [LINE]}, timeout=60)
            )
        )
        slow.start()
        while httpx2.get(f"{server.url}/health").json()["queued"] == 0:
            time.sleep(0.05)
        server.terminate()
        refused = False
        while slow.is_alive() and not refused:  # new connections are refused while draining
            try:
                httpx2.get(f"{server.url}/health", timeout=1)
            except httpx2.TransportError:
                refused = True
            time.sleep(0.05)
        slow.join(60)
        assert server.stop(60) == 0, server.log()
    assert refused
    assert answers[0].status_code == 200
    assert answers[0].json() == {"translations": [expected(tiny_checkpoint, LINE).text]}


def browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


@pytest.mark.skipif(
    browser() is None, reason="no Chromium/Chrome installed (apt-get install chromium)"
)
def test_page_translates_in_a_headless_browser(tiny_checkpoint, tmp_path):
    with ServerProcess(server_overrides(tiny_checkpoint, tmp_path)) as server:
        url = f"{server.url}/?text={urllib.parse.quote(LINE)}"  # the page submits it at once
        command = [
            browser(),
            "--headless",
            "--no-sandbox",  # tests may run as root
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=60000",  # run the page's fetches to the end before the dump
            "--dump-dom",
            url,
        ]
        dom = subprocess.run(command, capture_output=True, text=True, timeout=180).stdout
    assert 'data-state="done"' in dom, dom[-2000:]
    shown = re.search(r'<output id="translation">(.*?)</output>', dom, re.DOTALL)
    result = expected(tiny_checkpoint, LINE)
    assert shown is not None and html.unescape(shown.group(1)) == result.text
    heatmap = re.search(r'<table class="heatmap">(.*?)</table>', dom, re.DOTALL).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", heatmap, re.DOTALL)
    assert len(rows) == 1 + len(result.tgt_pieces)  # the header row: the source pieces
    assert rows[0].count("<th") == 1 + len(result.src_pieces)
    assert all(row.count("<td") == len(result.src_pieces) for row in rows[1:])
