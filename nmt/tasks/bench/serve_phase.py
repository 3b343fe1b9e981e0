"""Serving side of `nmt-bench` (task=serve): the HTTP server under load, on loopback.

The first `bench.serve.lines` test lines are translated once by the translator as `translate`
does (one call, timed, in its own process): that gives the expected answers and the
reference lines/s. Then a real `scripts/serve.py` process serves the same checkpoint with
the same settings, and for each level of `bench.serve.concurrency` that many clients send
the lines one per request (each level bounded by the line count and `bench.serve.seconds`).
Every answer is compared with the expected line: a failed request counts as lost, a
different answer as mismatched. The soak keeps `bench.serve.soak_concurrency` clients busy
for `bench.serve.soak_seconds` while the server's RSS is sampled.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from nmt.data.corpus import read_lines
from nmt.search.strategy import SearchConfig
from nmt.tasks.bench.process import Runner, rss_mb
from nmt.tasks.hydra_setup import ROOT_DIR, to_dict
from nmt.tasks.translator_setup import TranslatorConfig, build_translator

SERVE_SCRIPT = ROOT_DIR / "scripts" / "serve.py"
_LISTENING = re.compile(r"Uvicorn running on http://([^:\s]+):(\d+)")


class ServerProcess:
    """`scripts/serve.py` in a child process on a free loopback port; SIGTERM on exit.

    Args:
        overrides: the serve config's overrides (`ckpt=...` at least).
        startup_timeout_s: how long the model may take to load.

    Attributes:
        url: http://127.0.0.1:PORT once started.
        returncode: the exit status after the context ends.
    """

    def __init__(self, overrides: Sequence[str], startup_timeout_s: float = 300) -> None:
        self.overrides = ["port=0", *overrides]
        self.startup_timeout_s = startup_timeout_s
        self.stderr: collections.deque[str] = collections.deque(maxlen=200)
        self.url = ""
        self.returncode: int | None = None
        self._listening = threading.Event()

    def __enter__(self) -> ServerProcess:
        self.process = subprocess.Popen(
            [sys.executable, str(SERVE_SCRIPT), *self.overrides],
            stdout=subprocess.DEVNULL,  # uvicorn's access log
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read_stderr, daemon=True).start()
        if not self._listening.wait(self.startup_timeout_s) or self.process.poll() is not None:
            self.stop()
            raise RuntimeError(f"the server did not start: {self.log()}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self.process.pid

    def terminate(self) -> None:
        """Send SIGTERM (the server drains, then exits)."""
        self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 120) -> int:
        """SIGTERM, wait for the exit (kill past `timeout`), and return the exit status."""
        if self.process.poll() is None:
            self.terminate()
        try:
            self.returncode = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.returncode = self.process.wait()
        return self.returncode

    def log(self) -> str:
        """The server's last stderr lines, joined."""
        return " | ".join(self.stderr)

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            self.stderr.append(line.rstrip())
            found = _LISTENING.search(line)
            if found:
                self.url = f"http://{found.group(1)}:{found.group(2)}"
                self._listening.set()
        self._listening.set()  # exited: __enter__ stops waiting


@dataclass
class LevelResult:
    """What the clients of one level saw."""

    latencies: list[float] = field(default_factory=list)
    lost: int = 0
    mismatched: int = 0

    def figures(self, seconds: float) -> dict[str, Any]:
        done = len(self.latencies)
        ms = np.array(self.latencies) * 1000 if done else np.zeros(1)
        return {
            "lines": done,
            "seconds": seconds,
            "lines_per_s": done / seconds,
            "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)),
            "lost": self.lost,
            "mismatched": self.mismatched,
        }


def serve_phase(cfg: DictConfig, ckpt: str, threads: int, run: Runner) -> dict[str, Any]:
    """Load-test the server on `ckpt` against `translate` on the same lines (see module doc)."""
    options = cfg.bench.serve
    lines = read_lines(cfg.bench.test_src)[: options.lines]
    search = to_dict(cfg.bench.search[options.search])
    translator = {
        "batch_tokens": cfg.bench.batch_tokens,
        "max_src_tokens": cfg.bench.max_src_tokens,
        "tgt_lang": options.tgt_lang,
    }
    reference = run(translate_reference, ckpt, translator, search, lines, threads)
    reference_lps = len(lines) / reference["seconds"]
    overrides = [
        f"ckpt={ckpt}",
        f"threads={threads}",
        f"hydra.run.dir={Path(cfg.paths.output_dir) / 'serve'}",
        *[f"{key}={value}" for key, value in translator.items() if value is not None],
        *[f"search.{key}={value}" for key, value in search.items()],
        *options.server_overrides,
    ]
    report: dict[str, Any] = {
        "lines": len(lines),
        "search": options.search,
        "translate_lines_per_s": reference_lps,
    }
    expected = reference["hyps"]
    with ServerProcess(overrides, options.startup_timeout_s) as server:
        for clients in options.concurrency:
            level = _load(server.url, lines, expected, clients, options.seconds, cycle=False)
            report[f"clients_{clients}"] = level
            level["vs_translate"] = level["lines_per_s"] / reference_lps
        report["soak"] = _soak(server, lines, expected, options)
        report["exit_code"] = server.stop()
    levels = [report[f"clients_{c}"] for c in options.concurrency] + [report["soak"]]
    report["lost"] = sum(level["lost"] for level in levels)
    report["mismatched"] = sum(level["mismatched"] for level in levels)
    return report


def translate_reference(
    ckpt: str,
    translator: dict[str, Any],
    search: dict[str, Any],
    lines: list[str],
    threads: int,
) -> dict[str, Any]:
    """Translate `lines` as `translate` does (one call), timed after the model is loaded."""
    torch.set_num_threads(threads)
    model = build_translator(ckpt, TranslatorConfig(**translator))
    config = SearchConfig(**search)
    start = time.perf_counter()
    try:
        results = model.translate(lines, config, batch_tokens=translator["batch_tokens"])
    finally:
        model.close()
    return {"seconds": time.perf_counter() - start, "hyps": [r.text for r in results]}


def _load(
    url: str, lines: list[str], expected: list[str], clients: int, seconds: float, cycle: bool
) -> dict[str, Any]:
    """`clients` concurrent clients, one line per request, until the lines or `seconds` end."""
    result = LevelResult()
    start = time.perf_counter()
    asyncio.run(_clients(url, lines, expected, clients, start + seconds, cycle, result))
    return result.figures(time.perf_counter() - start)


async def _clients(
    url: str,
    lines: list[str],
    expected: list[str],
    clients: int,
    deadline: float,
    cycle: bool,
    result: LevelResult,
) -> None:
    import httpx2  # the serve extra

    logging.getLogger("httpx2").setLevel(logging.WARNING)  # not a line per request
    order: Iterator[int] = itertools.cycle(range(len(lines))) if cycle else iter(range(len(lines)))
    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx2.AsyncClient(base_url=url, limits=limits, timeout=300) as client:

        async def one_client() -> None:
            for index in order:
                if time.perf_counter() >= deadline:
                    return
                sent = time.perf_counter()
                try:
                    response = await client.post("/translate", json={"text": [lines[index]]})
                    answer = (
                        response.json()["translations"] if response.status_code == 200 else None
                    )
                except (httpx2.HTTPError, ValueError, KeyError):
                    answer = None
                if answer is None:
                    result.lost += 1
                    continue
                result.latencies.append(time.perf_counter() - sent)
                result.mismatched += answer != [expected[index]]

        await asyncio.gather(*(one_client() for _ in range(clients)))


def _soak(
    server: ServerProcess, lines: list[str], expected: list[str], options: DictConfig
) -> dict[str, Any]:
    """Load for `soak_seconds` while sampling the server's RSS every `rss_interval_s`."""
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while True:
            samples.append(rss_mb(server.pid))
            if stop.wait(options.rss_interval_s):
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    figures = _load(
        server.url, lines, expected, options.soak_concurrency, options.soak_seconds, cycle=True
    )
    stop.set()
    sampler.join()
    # The first sample is taken before the soak's first batch: growth is measured from the
    # second one, after the allocator has seen the soak's batch shapes.
    settled = samples[1:] or samples
    figures.update(
        clients=options.soak_concurrency,
        rss_mb=samples,
        rss_growth_mb=settled[-1] - settled[0],
        rss_max_mb=max(samples),
    )
    return figures
