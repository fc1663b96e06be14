"""Named entries from the configuration, changed over REST, seen by every process.

Modalities and Orthanc peers work the same way in Orthanc: a list from the
configuration file, changed at run time by ``PUT``/``DELETE``, either forgotten at
restart (the default) or kept in the database (``...InDatabase``). dicomhub keeps
the REST changes in an index property rather than in process memory, because HTTP
workers may be several processes and all of them must see the same list:

- not in the database: the configuration plus the changes of the current run; the
  changes are tagged with a token of the server run (the serving process, or the
  supervisor when there are several workers) and ignored by a later run, as Orthanc
  loses them on restart;
- in the database: the list lives in the index only and survives restarts; the
  configuration file's list is ignored, as in Orthanc.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any, Generic, TypeVar

from .archive import Archive
from .errors import InexistentItem
from .settings import http_workers
from .transactions import Transaction

T = TypeVar("T")


def _process_start(pid: int) -> str:
    """The start time of ``pid`` (so that a reused pid is a different run)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


#: The environment variable that counts the restarts of this process:
#: ``POST /tools/reset`` starts dicomhub again in the same process (same PID, same
#: start time: ``cli`` execs itself), and that is a new run, whose modalities and
#: peers come from the configuration again, as in Orthanc. Workers inherit it.
RESTARTS_VARIABLE = "DICOMHUB_RESTARTS"


def run_token(config: Mapping[str, Any]) -> str:
    """Identifies the current run of the server, shared by all its HTTP workers."""
    # With several workers the run is the supervisor's.
    pid = os.getppid() if http_workers(config.get("HttpWorkers")) > 1 else os.getpid()
    return f"{pid}:{_process_start(pid)}:{os.environ.get(RESTARTS_VARIABLE, '0')}"


class NamedRegistry(Generic[T]):
    """Entries of type ``T`` (a dataclass) by symbolic name.

    ``section`` is the configuration key (``DicomModalities``), also the name of the
    index property when the list is kept in the database; ``parse`` reads one entry
    of the configuration; ``unknown`` is the message when deleting a missing name.
    """

    def __init__(
        self,
        archive: Archive,
        config: Mapping[str, Any],
        section: str,
        entry_type: type[T],
        parse: Callable[[Any], T],
        unknown: str,
    ) -> None:
        self.archive = archive
        self.in_database = bool(config.get(f"{section}InDatabase", False))
        self._entry_type = entry_type
        self._unknown = unknown
        self._configured: dict[str, T] = {}
        if not self.in_database:
            for name, value in (config.get(section) or {}).items():
                self._configured[name] = parse(value)
        self._property = section if self.in_database else f"dicomhub.{section}.session"
        self._token = "" if self.in_database else run_token(config)

    def _serialize(self, entry: T) -> dict[str, Any]:
        return {f.name: getattr(entry, f.name) for f in fields(entry)}  # type: ignore[arg-type]

    def _deserialize(self, value: Mapping[str, Any]) -> T:
        names = {f.name for f in fields(self._entry_type)}  # type: ignore[arg-type]
        return self._entry_type(**{k: v for k, v in value.items() if k in names})

    # ---- reading ------------------------------------------------------------
    def _stored(self, session: Any) -> dict[str, dict[str, Any] | None]:
        raw = session.get_property(self._property)
        if not raw:
            return {}
        value = json.loads(raw)
        if self.in_database:
            return value
        return value.get("entries", {}) if value.get("run") == self._token else {}

    def all(self) -> dict[str, T]:
        with self.archive.read() as session:
            stored = self._stored(session)
        result = dict(self._configured)
        for name, value in stored.items():
            if value is None:
                result.pop(name, None)
            else:
                result[name] = self._deserialize(value)
        return dict(sorted(result.items()))

    def find(self, name: str) -> T | None:
        return self.all().get(name)

    # ---- changing -----------------------------------------------------------
    def _change(self, name: str, value: T | None) -> None:
        def run(tx: Transaction) -> None:
            stored = self._stored(tx.session)
            known = stored[name] is not None if name in stored else name in self._configured
            if value is None and not known:
                raise InexistentItem(f"{self._unknown}: {name}")
            if value is None and self.in_database:
                stored.pop(name, None)
            else:
                stored[name] = None if value is None else self._serialize(value)
            document: Any = stored if self.in_database else {"run": self._token, "entries": stored}
            tx.session.set_property(self._property, json.dumps(document, sort_keys=True))

        self.archive.write(run)

    def put(self, name: str, entry: T) -> None:
        self._change(name, entry)

    def delete(self, name: str) -> None:
        self._change(name, None)
