"""Entry points: `scripts/<name>.py` and the console scripts (`nmt-train`, ...) call these.

User errors never end in a traceback: a bad override or config value, a missing or undecodable
file, a bad checkpoint or an output that cannot be written prints one line `error: ...`
naming the key, file or line, and exits with status 1. Tracebacks are left for bugs
(and for everything when the user sets HYDRA_FULL_ERROR=1).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
import sys
from collections.abc import Callable
from importlib import import_module
from typing import Any, NoReturn

import hydra
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    OmegaConfBaseException,
    ValidationError,
)

from nmt.tasks.hydra_setup import CONF_DIR

FULL_ERROR = "HYDRA_FULL_ERROR"


def one_line(err: BaseException) -> str:
    """The message of `err` (and of an OmegaConf error causing it) on one line."""
    parts = [err] + [err.__cause__] * isinstance(err.__cause__, OmegaConfBaseException)
    lines = [line.strip() for part in parts for line in str(part).splitlines()]
    # Hydra lists its config search path after a missing config group option: noise here.
    lines = list(itertools.takewhile(lambda line: line != "Config search path:", lines))
    return "; ".join(line for line in lines if line)


def config_error(err: BaseException) -> str:
    """The `error: ...` line of a failed composition (a bad override or config file).

    The schemas (`nmt.tasks.hydra_setup.register_schemas`) type the model/optim/search/data
    nodes while Hydra composes them; their errors are worded as the untyped nodes' and the
    task-time checks word theirs: a value that does not convert names its key first, an unknown
    key is "not in struct" and the known keys are listed.
    """
    cause = err.__cause__
    if isinstance(cause, ValidationError) and cause.full_key:
        return f"error: {cause.full_key}: {str(cause).splitlines()[0]}"
    if isinstance(cause, ConfigAttributeError | ConfigKeyError) and dataclasses.is_dataclass(
        cause.object_type
    ):
        known = ", ".join(field.name for field in dataclasses.fields(cause.object_type))
        key = cause.full_key or cause.key
        return f"error: {key}: Key '{cause.key}' is not in struct (known: {known})"
    return f"error: config: {one_line(err)}"


def end_like_unix_tools() -> NoReturn:
    """End quietly after the reader of stdout went away (`nmt-translate ... | head -n 1`).

    Python ignores SIGPIPE and raises BrokenPipeError instead; Unix tools die of SIGPIPE,
    which a shell reports as status 141 and `set -o pipefail` treats like theirs. So: point
    stdout at /dev/null (nothing buffered can fail again at exit, as the Python docs advise
    in their note on SIGPIPE), restore SIGPIPE's default action and raise it. Atomic file
    outputs were already discarded while the error unwound.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGPIPE)
    raise SystemExit(128 + signal.SIGPIPE)  # not reached: the signal ends the process


def _entry(
    config_name: str, task_name: str, metric: Callable[[Any], Any] | None = None
) -> Callable[[], Any]:
    """A @hydra.main entry running `nmt.tasks.<task_name>` on the composed config.

    It returns the task's result, or `metric(result)` (what Hydra's sweepers optimize).
    """

    def run(cfg: DictConfig) -> Any:
        try:
            task = getattr(import_module(f"nmt.tasks.{task_name}"), task_name)
            result = task(cfg)
            sys.stdout.flush()  # a closed pipe fails here, not in the interpreter's last flush
            return result if metric is None else metric(result)
        except BrokenPipeError:
            end_like_unix_tools()
        except ValueError as err:
            # User and data errors: one line naming the file/line/key, non-zero exit.
            raise SystemExit(f"error: {err}") from None
        except OmegaConfBaseException as err:  # e.g. a required key (???) left unset
            raise SystemExit(f"error: config: {one_line(err)}") from None
        except OSError as err:
            if err.filename is None:
                raise
            raise SystemExit(f"error: {err.filename}: {err.strerror}") from None

    run.__name__ = task_name
    main = hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base="1.3")(run)

    def entry() -> Any:
        if os.environ.get(FULL_ERROR) == "1":
            return main()
        # Hydra prints composition errors over several lines unless HYDRA_FULL_ERROR is set,
        # in which case it raises them: catch them here and print one line instead.
        os.environ[FULL_ERROR] = "1"
        try:
            return main()
        except (HydraException, OmegaConfBaseException) as err:
            raise SystemExit(config_error(err)) from None
        finally:
            del os.environ[FULL_ERROR]

    return entry


prepare = _entry("prepare", "prepare")
train = _entry("train", "train", lambda result: result.valid_bleu)
translate = _entry("translate", "translate")
evaluate = _entry("evaluate", "evaluate")
bench = _entry("bench", "bench")
average = _entry("average", "average")
curves = _entry("curves", "curves")
langid = _entry("langid", "langid")
serve = _entry("serve", "serve")
