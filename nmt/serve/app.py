"""The ASGI app (Starlette): `POST /translate`, `GET /info`, `GET /health`, the page at `/`.

Every refusal is JSON `{"error": "one-line reason"}` with its status: 400/413/422 for a bad
request (`nmt.serve.request`), 503 with Retry-After when the queue is full or the server
is shutting down, 500 for the requests of a batch whose translation failed. Translation
runs on the batcher's worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from importlib import resources

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from nmt.serve.batcher import ClosedError, QueueFullError
from nmt.serve.request import RequestError
from nmt.serve.service import TranslationService

log = logging.getLogger("nmt.serve")


def create_app(service: TranslationService) -> Starlette:
    """The app serving `service`; its lifespan starts the worker and drains it at shutdown."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service.batcher.start()
        yield
        # uvicorn has let the in-flight requests finish; the queue is empty or being emptied.
        await asyncio.to_thread(service.batcher.close, service.settings.drain_timeout_s)

    async def translate(request: Request) -> Response:
        try:
            parsed = service.parse(await read_body(request, service.settings.max_body_bytes))
        except RequestError as err:
            return error(err.status, err.message)
        if not parsed.text:
            return JSONResponse({"translations": []})
        try:
            future = service.submit(parsed)
        except (QueueFullError, ClosedError) as err:
            retry = {"Retry-After": str(service.settings.retry_after_s)}
            return error(503, f"busy, try again later: {err}", retry)
        try:
            results = await asyncio.wrap_future(future)
        except Exception as err:  # this batch failed; the server goes on
            log.exception("translation failed")
            return error(500, f"translation failed: {one_line(err)}")
        return JSONResponse({"translations": results})

    async def info(request: Request) -> Response:
        return JSONResponse(service.info())

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "queued": service.batcher.queued()})

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, exc.detail, exc.headers)

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/info", info, methods=["GET"]),
        Route("/translate", translate, methods=["POST"]),
    ]
    return Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed `limit` bytes."""
    too_large = RequestError(413, f"request body exceeds serve.max_body_bytes={limit}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


PAGE = resources.files("nmt.serve").joinpath("page.html").read_text(encoding="utf-8")
