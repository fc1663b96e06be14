"""Logging set-up for the server process.

Lines look like ``W1128 17:58:47.337339 MainThread config.py:55] message``: the level
letter first (``T`` trace, ``I`` info, ``W`` warning, ``E`` error, ``F`` fatal), so
that ``grep ^E`` finds the errors, then the local date and time to the microsecond,
the thread (an HTTP worker, a DICOM association, a job), and the source line.

As with Orthanc, warnings and errors are shown by default, ``--verbose`` adds
information messages and ``--trace`` everything. Third-party libraries (uvicorn,
pynetdicom, SQLAlchemy) stay at warnings unless a category flag such as
``--verbose-dicom`` asks for more, because their debug output would drown ours.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TextIO

__all__ = [
    "CATEGORIES",
    "QUIET_LOGGERS",
    "LogFormatter",
    "quiet_third_parties",
    "reset_logging",
    "setup_logging",
]

#: Orthanc's log categories and the loggers each one covers.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "generic": ("dicomhub",),
    "plugins": ("dicomhub.scripting",),
    "http": ("dicomhub.rest", "dicomhub.server", "uvicorn", "uvicorn.error", "uvicorn.access"),
    "sqlite": ("dicomhub.store", "sqlalchemy.engine"),
    "dicom": ("dicomhub.net", "pynetdicom"),
    "jobs": ("dicomhub.core.jobs",),
    "lua": ("dicomhub.scripting",),
}

_LETTERS = {
    logging.DEBUG: "T",
    logging.INFO: "I",
    logging.WARNING: "W",
    logging.ERROR: "E",
    logging.CRITICAL: "F",
}

_MARK = "_dicomhub_handler"

#: Loggers kept quiet unless ``--trace``: pydicom's pixel decoders log a traceback at
#: ERROR for every plugin that fails on a frame before they raise (three for one
#: undecodable JPEG); the exception carries the same reasons, and ``core.images``
#: logs them as one line.
QUIET_LOGGERS = ("pydicom.pixels.decoders.base",)


class LogFormatter(logging.Formatter):
    """One line per record in the layout described in the module docstring."""

    def format(self, record: logging.LogRecord) -> str:
        letter = _LETTERS.get(record.levelno) or record.levelname[:1]
        stamp = datetime.fromtimestamp(record.created).strftime("%m%d %H:%M:%S.%f")
        line = (
            f"{letter}{stamp} {record.threadName} {record.filename}:{record.lineno}] "
            f"{record.getMessage()}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def _logdir_file(logdir: str) -> str:
    """A new file in ``logdir`` named after the start time and the process.

    Each start gets its own file, so a restart never overwrites the log of the run
    that crashed; ``dicomhub.log`` is pointed at the newest one when the system
    allows symbolic links.
    """
    if not os.path.isdir(logdir):
        raise NotADirectoryError(
            f"The directory where to store the log files does not exist: {logdir}"
        )
    name = f"dicomhub.log.{time.strftime('%Y%m%d-%H%M%S')}.{os.getpid()}"
    path = os.path.join(logdir, name)
    link = os.path.join(logdir, "dicomhub.log")
    try:
        if os.path.islink(link):
            os.unlink(link)
        if not os.path.exists(link):
            os.symlink(name, link)
    except OSError:
        pass
    return path


def setup_logging(
    verbose: bool = False,
    trace: bool = False,
    logfile: str | None = None,
    logdir: str | None = None,
    *,
    categories: Mapping[str, int] | None = None,
    stream: TextIO | None = None,
) -> str | None:
    """Send the logs of the process to stderr, ``logfile`` or a new file in ``logdir``.

    ``categories`` maps an Orthanc log category (see CATEGORIES) to a level, for the
    ``--verbose-<category>`` and ``--trace-<category>`` options. Calling it again
    replaces what a previous call installed. Returns the path of the log file, if
    any. Raises OSError when the file cannot be opened, so that the caller can refuse
    to start rather than run without logs.
    """
    path = _logdir_file(logdir) if logdir else logfile
    if path:
        handler: logging.Handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    else:
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(LogFormatter())
    setattr(handler, _MARK, True)

    reset_logging()
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    level = logging.DEBUG if trace else logging.INFO if verbose else logging.WARNING
    logging.getLogger("dicomhub").setLevel(level)
    quiet_third_parties(not trace)
    for category, category_level in (categories or {}).items():
        for name in CATEGORIES[category]:
            ours = name == "dicomhub" or name.startswith("dicomhub.")
            logging.getLogger(name).setLevel(min(category_level, level) if ours else category_level)
    logging.captureWarnings(True)
    return path


def quiet_third_parties(quiet: bool) -> None:
    """Silence ``QUIET_LOGGERS`` (``quiet``), or let them log again (at trace level)."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL if quiet else logging.NOTSET)


def reset_logging() -> None:
    """Undo setup_logging: remove its handler and the levels it set.

    For embedding and tests, where the process outlives one run of the server.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
        old.close()
    for names in (*CATEGORIES.values(), QUIET_LOGGERS):
        for name in names:
            logging.getLogger(name).setLevel(logging.NOTSET)
    logging.captureWarnings(False)
