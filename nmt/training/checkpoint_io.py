"""Checkpoint writing that survives a kill or a full disk mid-write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from fsspec.implementations.local import LocalFileSystem
from lightning_fabric.utilities.cloud_io import get_filesystem
from lightning_fabric.utilities.types import _PATH
from pytorch_lightning.plugins.io import TorchCheckpointIO

from nmt.utils.io import atomic_open


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file beside it, fsync, then rename over it.

    A checkpoint path therefore always holds a complete file: the previous one or the new
    one, whether the process is killed or the disk fills up during the write. Lightning's
    own writer stages the file in the system temp dir and moves it, which becomes a
    non-atomic copy when that dir is on another file system, and holds the whole
    serialized checkpoint in memory; this one streams into the target directory.
    Remote (fsspec) paths keep Lightning's writer. The file format is `torch.save`'s, so
    `torch.load(path, weights_only=True)` reads it as before.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        """Save `checkpoint` to `path` atomically.

        Raises:
            ValueError: the file could not be written (disk full, unwritable directory);
                the message names the path, and an earlier file at `path` is intact.
        """
        if not isinstance(get_filesystem(path), LocalFileSystem):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        try:
            with atomic_open(Path(path), "wb") as handle:
                torch.save(checkpoint, handle)
        except (OSError, RuntimeError) as err:
            cause = _os_error(err)
            if cause is None:
                raise
            raise ValueError(f"{path}: cannot write checkpoint: {cause.strerror or cause}") from err


def _os_error(err: BaseException | None) -> OSError | None:
    """The OSError behind `err`: torch.save reports a failed write as a RuntimeError."""
    while err is not None and not isinstance(err, OSError):
        err = err.__cause__ or err.__context__
    return err
