"""ServeConfig: how the server batches, and what a request may send.

The values live in the `serve:` node of conf/serve.yaml only (no defaults here); they are
checked here, before a checkpoint is read. Where it listens (`host`, `port`) is the task's.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeConfig:
    """The server's settings; every limit is enforced per request, before it is queued.

    Attributes:
        max_wait_ms: how long the first request of a batch waits for others to join it.
        max_batch_segments: most segments one translate call gets (a larger request runs alone).
        max_queued_requests: requests waiting for the model; past it, 503 with Retry-After.
        retry_after_s: the Retry-After a 503 carries.
        max_body_bytes: largest request body (413 past it).
        max_segments: most segments in one request (413 past it).
        max_segment_chars: longest segment, in characters (413 past it).
        max_beam_size: largest `beam_size` a request may ask for (422 past it).
        drain_timeout_s: on SIGTERM, how long in-flight requests may take before the exit.
    """

    max_wait_ms: float
    max_batch_segments: int
    max_queued_requests: int
    retry_after_s: int
    max_body_bytes: int
    max_segments: int
    max_segment_chars: int
    max_beam_size: int
    drain_timeout_s: int

    def __post_init__(self) -> None:
        if self.max_wait_ms < 0:
            raise ValueError(f"serve.max_wait_ms must be >= 0, got {self.max_wait_ms}")
        for key in (
            "max_batch_segments",
            "max_queued_requests",
            "retry_after_s",
            "max_body_bytes",
            "max_segments",
            "max_segment_chars",
            "max_beam_size",
            "drain_timeout_s",
        ):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"serve.{key} must be an integer >= 1, got {value!r}")
