"""`serve` task: load the checkpoint(s) as `translate` does and serve them over HTTP.

The model is built by `build_translator` from the same translator keys and search group as
`translate`, so a request's answer is what `translate` writes for those lines. uvicorn runs
the app; on SIGTERM (or Ctrl-C) it stops accepting connections, lets in-flight requests
finish (at most `serve.drain_timeout_s`), then the worker drains and the process exits 0.
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

import torch
from omegaconf import DictConfig

from nmt.search.strategy import SearchConfig
from nmt.tasks.hydra_setup import typed_dict
from nmt.tasks.translator_setup import TranslatorConfig, build_translator

if TYPE_CHECKING:
    from nmt.serve.service import TranslationService

SERVE_EXTRA = "pip install 'nmt[serve]'"


def serve(cfg: DictConfig) -> None:
    """Serve `ckpt` on `host`:`port` until SIGTERM/SIGINT."""
    try:  # the optional `serve` extra
        import uvicorn

        from nmt.serve.app import create_app
    except ImportError as err:
        raise ValueError(
            f"serve needs the serve extra ({err.name} is missing): {SERVE_EXTRA}"
        ) from None
    if isinstance(cfg.port, bool) or not isinstance(cfg.port, int) or not 0 <= cfg.port <= 65535:
        raise ValueError(f"port must be an integer in [0, 65535], got {cfg.port!r}")
    service = build_service(cfg)
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        uvicorn.run(
            create_app(service),
            host=cfg.host,
            port=cfg.port,
            log_level=cfg.log_level,
            timeout_graceful_shutdown=service.settings.drain_timeout_s,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stopped(signum: int, frame: object) -> None:
    """After its graceful shutdown, uvicorn raises the SIGTERM it handled again for the
    handler it found: a drained stop ends with status 0 rather than death by signal."""
    raise SystemExit(0)


def build_service(cfg: DictConfig) -> TranslationService:
    """The checked settings and the loaded translator of a composed serve config."""
    from nmt.serve.service import TranslationService
    from nmt.serve.settings import ServeConfig

    settings = ServeConfig(**typed_dict(cfg.serve, ServeConfig, "serve"))
    search = SearchConfig(**typed_dict(cfg.search, SearchConfig, "search"))
    translator_settings = TranslatorConfig.from_config(cfg)
    threads = cfg.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    return TranslationService(
        build_translator(cfg.ckpt, translator_settings),
        search,
        settings,
        batch_tokens=translator_settings.batch_tokens,
        threads=threads,
    )
