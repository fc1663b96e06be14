"""The ``dicomhub`` command: Orthanc's command line, so that service files and
container entry points written for Orthanc start dicomhub unchanged.

Options use Orthanc's ``--option=value`` form and are read left to right, so
``--help``, ``--version`` and ``--config=FILE`` act as soon as they are met.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from dataclasses import dataclass, field

from . import ORTHANC_API_VERSION, __version__
from .config import ConfigurationError, default_configuration_text, load_configuration
from .logs import CATEGORIES, setup_logging

log = logging.getLogger("dicomhub.cli")

#: Exit status for a bad command line, an unusable log destination or a configuration
#: that cannot be loaded. Orthanc exits with -1 in all these cases, which the shell
#: shows as 255; scripts written for Orthanc keep working.
EXIT_ERROR = 255

USAGE = f"""\
Usage: dicomhub [OPTION]... [CONFIGURATION]
dicomhub {__version__}: an Orthanc-compatible DICOM server (Orthanc API {ORTHANC_API_VERSION}).

CONFIGURATION is a JSON file, or a folder whose *.json files are merged. Without
it, the default configuration is used. Environment variables named like
ORTHANC__DICOM_AET override options, as in the official Orthanc Docker images.

Options:
  --help                 display this help and exit
  --version              output version information and exit
  --config=FILE          write the default configuration to FILE and exit
                         ("-" writes it to the standard output)
  --openapi=FILE         write the OpenAPI description of the REST API to FILE
                         and exit ("-" or no FILE writes it to the standard output)
  --errors               print the error codes dicomhub may answer and exit
  --logfile=FILE         append the log to FILE (by default, logs go to stderr)
  --logdir=DIR           write the log to a new timestamped file in DIR
  --verbose              log information messages
  --trace                log everything (for debugging)
  --verbose-CATEGORY     log information messages of one category
  --trace-CATEGORY       log everything of one category
                         (CATEGORY: {", ".join(CATEGORIES)})
  --no-jobs              do not resume the jobs saved by the previous run
  --upgrade              accepted for compatibility with Orthanc; no effect

Exit status:
  0    success
  {EXIT_ERROR}  invalid command line, log destination or configuration, or an
       unexpected error
  other the server could not start (see the log)
"""


class UsageError(Exception):
    """A command line dicomhub cannot run with."""


@dataclass
class Options:
    """What the command line asks for, once parsed."""

    config_path: str | None = None
    verbose: bool = False
    trace: bool = False
    logfile: str | None = None
    logdir: str | None = None
    no_jobs: bool = False
    categories: dict[str, int] = field(default_factory=dict)
    action: str | None = None  # help, version, errors, config or openapi: the first one wins
    config_output: str | None = None  # where --config or --openapi writes


def parse_arguments(argv: list[str]) -> Options:
    """Read the arguments left to right, as Orthanc does."""
    options = Options()
    paths: list[str] = []
    for arg in argv:
        name, has_value, value = arg.partition("=")
        if not arg.startswith("--"):
            paths.append(arg)
        elif arg in ("--help", "--version", "--errors"):
            options.action = arg[2:]
            return options
        elif name == "--config":
            if not has_value or not value:
                raise UsageError("--config needs a file name: --config=FILE (or --config=-)")
            options.action = "config"
            options.config_output = value
            return options
        elif name == "--openapi":
            options.action = "openapi"
            options.config_output = value if has_value and value else "-"
            return options
        elif name in ("--logfile", "--logdir"):
            if not has_value or not value:
                raise UsageError(f"{name} needs a value: {name}=...")
            if name == "--logfile":
                options.logfile, options.logdir = value, None
            else:
                options.logdir, options.logfile = value, None
        elif has_value:
            raise UsageError(f"Unknown option, or an option that takes no value: {arg}")
        elif arg == "--verbose":
            options.verbose = True
        elif arg == "--trace":
            options.trace = True
        elif arg == "--no-jobs":
            options.no_jobs = True
        elif arg == "--upgrade":
            pass
        elif arg.startswith(("--verbose-", "--trace-")):
            kind, _, category = arg[2:].partition("-")
            if category not in CATEGORIES:
                raise UsageError(
                    f"Unknown log category in {arg}: use one of {', '.join(CATEGORIES)}"
                )
            options.categories[category] = logging.DEBUG if kind == "trace" else logging.INFO
        else:
            raise UsageError(f"Unknown option: {arg}")
    if len(paths) > 1:
        raise UsageError("More than one configuration path was given: " + " ".join(paths))
    options.config_path = paths[0] if paths else None
    return options


def _print_errors() -> int:
    """``--errors``: Orthanc's list of error codes, for the codes dicomhub answers."""
    from .core.errors import DicomhubError
    from .rest.app import create_app_routes

    create_app_routes()  # imports every module, and so every error class
    names: dict[int, str] = {0: "Success"}
    pending = [DicomhubError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.code not in names or cls.__module__ == DicomhubError.__module__:
            names[cls.code] = cls.name
    sys.stdout.write(
        f"dicomhub {__version__}\n\nList of error codes that could be returned by dicomhub:\n\n"
    )
    for code in sorted(names):
        sys.stdout.write(f"{code:>16}   {names[code]}\n")
    return 0


def _write_openapi(target: str) -> int:
    import json

    from .rest.app import create_app_routes
    from .rest.openapi import openapi_document

    text = json.dumps(openapi_document(create_app_routes()), indent=2) + "\n"
    return _write_text(text, target, "the OpenAPI description")


def _write_default_configuration(target: str) -> int:
    return _write_text(default_configuration_text(), target, "the default configuration")


def _write_text(text: str, target: str, what: str) -> int:
    if target == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    try:
        with open(target, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        print(
            f"dicomhub: cannot write {what} to {target}: {exc.strerror}",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return 0


def _restart(args: list[str]) -> None:
    """Start again in this process (same PID, same command line), as Orthanc's reset
    re-reads its configuration; the port, index and lock files are closed by now."""
    from .core.registry import RESTARTS_VARIABLE  # a new run for REST-added modalities

    os.environ[RESTARTS_VARIABLE] = str(int(os.environ.get(RESTARTS_VARIABLE, "0") or 0) + 1)
    logging.shutdown()
    os.execv(sys.executable, [sys.executable, "-m", "dicomhub", *args])


def _fail(message: str, logs_elsewhere: bool) -> int:
    """Report a start-up failure where the administrator will look for it.

    It goes to the log; and to stderr as well when the log is a file, because whoever
    started the command watches the terminal (or the service manager's journal).
    """
    log.error("%s", message)
    if logs_elsewhere:
        print(f"dicomhub: {message}", file=sys.stderr)
    return EXIT_ERROR


class _StoppedBeforeServing(BaseException):
    """SIGTERM during start-up (a BaseException: no ``except Exception`` holds it)."""


def _stop_before_serving(_signum: int, _frame: object) -> None:
    log.warning("Stopped by SIGTERM before serving")
    raise _StoppedBeforeServing()


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    try:
        options = parse_arguments(args)
    except UsageError as exc:
        print(f"dicomhub: {exc}\nTry 'dicomhub --help' for more information.", file=sys.stderr)
        return EXIT_ERROR

    if options.action == "help":
        sys.stdout.write(USAGE)
        return 0
    if options.action == "version":
        print(f"dicomhub {__version__} (Orthanc API {ORTHANC_API_VERSION})")
        return 0
    if options.action == "config":
        return _write_default_configuration(options.config_output or "-")
    if options.action == "openapi":
        return _write_openapi(options.config_output or "-")
    if options.action == "errors":
        return _print_errors()

    try:
        logpath = setup_logging(
            options.verbose,
            options.trace,
            options.logfile,
            options.logdir,
            categories=options.categories,
        )
    except OSError as exc:
        target = options.logdir or options.logfile
        print(f"dicomhub: cannot write the log to {target}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    logs_elsewhere = logpath is not None

    log.warning("dicomhub version: %s (Orthanc API %s)", __version__, ORTHANC_API_VERSION)
    # Until the server installs its own handling, a SIGTERM stops the start cleanly
    # (status 0, as Orthanc), rather than killing the process by the signal.
    previous = signal.signal(signal.SIGTERM, _stop_before_serving)
    try:
        try:
            config = load_configuration(options.config_path)
        except ConfigurationError as exc:
            return _fail(str(exc), logs_elsewhere)
        if options.config_path is None:
            log.warning("Using the default configuration")

        from .server import restart_requested, serve  # late: --help and --config need no server

        code = serve(config, no_jobs=options.no_jobs)
        if code == 0 and restart_requested():
            _restart(args)
        return code
    except ConfigurationError as exc:
        return _fail(str(exc), logs_elsewhere)
    except (KeyboardInterrupt, _StoppedBeforeServing):
        return 0
    except Exception:
        log.exception("dicomhub stopped on an unexpected error")
        if logs_elsewhere:
            print("dicomhub: stopped on an unexpected error, see the log", file=sys.stderr)
        return EXIT_ERROR
    finally:
        signal.signal(signal.SIGTERM, previous)
