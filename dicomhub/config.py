"""The Orthanc-format configuration: read, merge, expand, override, validate.

dicomhub reads the same configuration files as Orthanc so that a site can switch
servers without rewriting them. What Orthanc 1.10.1 was observed to do, and what
this module therefore does too:

* The path is one file, or a folder whose ``*.json`` files (extension matched
  without regard to case, sub-folders ignored) are all read. A top-level key
  defined in two files of the folder is refused, because the winner would depend
  on the order of the files.
* ``//`` and ``/* */`` comments and trailing commas are accepted; within one file a
  key given twice keeps its last value.
* ``${VAR}`` and ``${VAR:-default}`` are replaced in the text before it is parsed,
  so they work unquoted too (``"HttpPort" : ${PORT}``). An unset variable without a
  default becomes the empty string; the default is used only when the variable is
  unset (a variable set to the empty string gives the empty string).
* Values of the wrong type are refused at start-up.

On top of that, the environment variables of the official Orthanc Docker images
override the files: ``ORTHANC__DICOM_AET=PACS`` sets ``DicomAet``, a double
underscore goes one level down (``ORTHANC__DICOM_WEB__ROOT``), values are parsed as
JSON when they can be (numbers, booleans, lists, objects) and kept as strings
otherwise, and ``ORTHANC_JSON`` holds a whole JSON document to merge.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

log = logging.getLogger("dicomhub.config")

__all__ = [
    "DEFAULTS",
    "OPTIONAL_KEYS",
    "Configuration",
    "ConfigurationError",
    "default_configuration_text",
    "load_configuration",
]


class ConfigurationError(Exception):
    """A configuration that dicomhub must not start with.

    ``path``, ``line`` and ``column`` locate the problem when it is in a file, so that
    the message (and a caller) can point the administrator at the exact spot.
    """

    def __init__(
        self,
        message: str,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.column = column


# --------------------------------------------------------------------------------------
# The known options. One table is the source of DEFAULTS, of the type checks and of the
# commented default file, so the three cannot drift apart.
# --------------------------------------------------------------------------------------

_UNSET: Any = object()


@dataclass(frozen=True)
class _Option:
    key: str
    default: Any  # _UNSET for options that are absent unless configured
    doc: str
    kinds: tuple[type, ...] = ()  # accepted JSON types; derived from the default if empty
    example: Any = None  # shown, commented out, for options without a default

    def accepted(self) -> tuple[type, ...]:
        if self.kinds:
            return self.kinds
        return (type(self.default),)


def _o(key: str, default: Any, doc: str, *kinds: type) -> _Option:
    return _Option(key, default, doc, kinds)


def _u(key: str, example: Any, doc: str, *kinds: type) -> _Option:
    return _Option(key, _UNSET, doc, kinds or (type(example),), example)


_SECTIONS: list[tuple[str, list[_Option]]] = [
    (
        "General",
        [
            _o("Name", "MyOrthanc", "Name of this server, shown by the explorer and GET /system."),
            _o("StorageDirectory", "OrthancStorage", "Folder of the stored DICOM files."),
            _o(
                "IndexDirectory",
                "OrthancStorage",
                "Folder of the SQLite index. When left out, StorageDirectory is used.",
            ),
            _u(
                "TemporaryDirectory",
                "/tmp/dicomhub",
                "Folder for large temporary files (archives being built). Default: the "
                "system's temporary folder.",
            ),
            _o("StorageCompression", False, "Compress the stored DICOM files (zlib)."),
            _o("MaximumStorageSize", 0, "Largest storage size in MB; 0 means no limit."),
            _o("MaximumPatientCount", 0, "Largest number of patients; 0 means no limit."),
            _o(
                "MaximumStorageMode",
                "Recycle",
                'What happens when a limit is reached: "Recycle" deletes the oldest '
                'unprotected patients, "Reject" refuses new instances.',
            ),
            _o("MaximumStorageCacheSize", 128, "Size in MB of the in-memory file cache."),
            _o("LuaScripts", [], "Lua scripts to load at start-up."),
            _o("LuaHeartBeatPeriod", 0, "Seconds between calls of Lua OnHeartBeat(); 0: never."),
            _o("Plugins", [], "Orthanc plugins (shared libraries); dicomhub does not load them."),
            _o("ConcurrentJobs", 2, "Jobs running at the same time; 0 means one per CPU core."),
            _o(
                "JobsEngineThreadsCount",
                {"ResourceModification": 1},
                "Threads used inside one job, per kind of job.",
            ),
            _o("ReadOnly", False, "Serve the archive without ever changing it."),
        ],
    ),
    (
        "HTTP server",
        [
            _o("HttpServerEnabled", True, "Run the HTTP server (REST API and explorer)."),
            _o("OrthancExplorerEnabled", True, "Serve the web explorer."),
            _o("HttpPort", 8042, "TCP port of the HTTP server."),
            _o("HttpDescribeErrors", True, "Put a JSON description of errors in HTTP answers."),
            _o("HttpCompressionEnabled", False, "Compress HTTP answers (gzip/deflate)."),
            _o("WebDavEnabled", True, "Publish the archive as a WebDAV share."),
            _o("WebDavDeleteAllowed", False, "Allow deletions through WebDAV."),
            _o("WebDavUploadAllowed", True, "Allow uploads through WebDAV."),
            _o("HttpThreadsCount", 50, "Threads serving HTTP requests."),
            _o("HttpRequestTimeout", 30, "Seconds before an idle HTTP request is dropped."),
            _o("KeepAlive", True, "Keep HTTP connections open between requests."),
            _o("KeepAliveTimeout", 1, "Seconds an idle kept-alive connection stays open."),
            _o("TcpNoDelay", True, "Disable Nagle's algorithm on HTTP sockets."),
        ],
    ),
    (
        "HTTP security",
        [
            _o(
                "RemoteAccessAllowed",
                False,
                "Accept HTTP clients from other hosts (otherwise only from this host).",
            ),
            _o(
                "AuthenticationEnabled",
                None,
                "Require HTTP basic authentication. When left out it follows RemoteAccessAllowed.",
                bool,
                type(None),
            ),
            _o("RegisteredUsers", {}, 'Users of HTTP basic authentication: {"user": "password"}.'),
            _o("SslEnabled", False, "Serve HTTPS instead of HTTP."),
            _o("SslCertificate", "certificate.pem", "PEM file with the certificate and its key."),
            _o("SslMinimumProtocolVersion", 4, "Oldest TLS accepted: 4 means TLS 1.2."),
            _u("SslCiphersAccepted", ["AES128-GCM-SHA256"], "Ciphers accepted for HTTPS."),
            _o("SslVerifyPeers", False, "Require client certificates."),
            _o(
                "SslTrustedClientCertificates",
                "trustedClientCertificates.pem",
                "PEM file of the client certificates that are trusted.",
            ),
            _o("ExecuteLuaEnabled", False, "Allow POST /tools/execute-script."),
            _o(
                "RestApiWriteToFileSystemEnabled",
                False,
                "Allow REST calls that write files on the server (.../export).",
            ),
        ],
    ),
    (
        "DICOM server",
        [
            _o("DicomServerEnabled", True, "Run the DICOM listener."),
            _o("DicomAet", "ORTHANC", "Application Entity Title (16 characters at most)."),
            _o("DicomCheckCalledAet", False, "Refuse associations that call another AET."),
            _o("DicomPort", 4242, "TCP port of the DICOM listener."),
            _o(
                "DefaultEncoding",
                "Latin1",
                "Character set of files without SpecificCharacterSet, also used in C-FIND "
                'answers ("Ascii", "Utf8", "Latin1", ... "SimplifiedChinese").',
            ),
            _o(
                "AcceptedTransferSyntaxes",
                ["1.2.840.10008.1.*"],
                'Transfer syntaxes accepted by C-STORE, "*" and "?" allowed.',
                list,
                str,
            ),
            _u("DeflatedTransferSyntaxAccepted", True, "Accept deflated transfer syntaxes."),
            _u("JpegTransferSyntaxAccepted", True, "Accept JPEG transfer syntaxes."),
            _u("Jpeg2000TransferSyntaxAccepted", True, "Accept JPEG 2000 transfer syntaxes."),
            _u("JpegLosslessTransferSyntaxAccepted", True, "Accept JPEG-LS transfer syntaxes."),
            _u("JpipTransferSyntaxAccepted", True, "Accept JPIP transfer syntaxes."),
            _u("Mpeg2TransferSyntaxAccepted", True, "Accept MPEG-2 transfer syntaxes."),
            _u("RleTransferSyntaxAccepted", True, "Accept RLE transfer syntaxes."),
            _u("Mpeg4TransferSyntaxAccepted", True, "Accept MPEG-4 transfer syntaxes."),
            _u("H265TransferSyntaxAccepted", True, "Accept H.265 transfer syntaxes."),
            _o("UnknownSopClassAccepted", False, "Store SOP classes that are not known."),
            _u("AcceptedSopClasses", ["1.2.840.10008.5.1.4.1.*"], "SOP classes accepted."),
            _u("RejectedSopClasses", ["1.2.840.10008.5.1.4.1.1.104.*"], "SOP classes refused."),
            _o("DicomScpTimeout", 30, "Seconds before an idle incoming association is closed."),
            _o("DicomThreadsCount", 4, "Threads handling incoming DICOM requests."),
            _o("MaximumPduLength", 16384, "Largest PDU in bytes (4096 to 131072)."),
            _o("DicomAlwaysAllowEcho", True, "Answer C-ECHO from unknown modalities."),
            _o("DicomAlwaysAllowStore", True, "Accept C-STORE from unknown modalities."),
            _o("DicomAlwaysAllowFind", False, "Answer C-FIND from unknown modalities."),
            _o("DicomAlwaysAllowFindWorklist", False, "Answer worklist C-FIND from unknowns."),
            _o("DicomAlwaysAllowGet", False, "Answer C-GET from unknown modalities."),
            _o("DicomAlwaysAllowMove", False, "Answer C-MOVE from unknown modalities."),
            _o("DicomCheckModalityHost", False, "Check the IP address of known modalities."),
            _o("StrictAetComparison", False, "Compare AETs case-sensitively."),
            _o("DicomTlsEnabled", False, "Use DICOM TLS on the listener."),
            _u("DicomTlsCertificate", "dicomhub.crt", "PEM certificate for DICOM TLS."),
            _u("DicomTlsPrivateKey", "dicomhub.key", "PEM private key for DICOM TLS."),
            _u("DicomTlsTrustedCertificates", "trusted.crt", "PEM certificates trusted."),
            _o("DicomTlsRemoteCertificateRequired", True, "Require a certificate from peers."),
            _u("DicomTlsMinimumProtocolVersion", 0, "Oldest TLS version accepted for DICOM."),
            _u("DicomTlsCiphersAccepted", ["AES128-GCM-SHA256"], "Ciphers for DICOM TLS."),
        ],
    ),
    (
        "Network peers",
        [
            _o(
                "DicomModalities",
                {},
                'Known modalities: "name": ["AET", "host", port] or an object with AET, '
                "Host, Port, Manufacturer, Allow... fields.",
            ),
            _o("DicomModalitiesInDatabase", False, "Keep modalities in the database instead."),
            _o("DicomEchoChecksFind", False, "Follow a C-ECHO test with a C-FIND."),
            _o("DicomScuTimeout", 10, "Seconds to wait for a remote modality's answer."),
            _o(
                "DicomScuPreferredTransferSyntax",
                "1.2.840.10008.1.2.1",
                "Transfer syntax to transcode to when a peer refuses the original one.",
            ),
            _o("DicomDefaultRetrieveMethod", "C-MOVE", 'Retrieve with "C-MOVE" or "C-GET".'),
            _o("DicomAssociationCloseDelay", 5, "Seconds a Lua-opened association lingers."),
            _o(
                "OrthancPeers",
                {},
                'Known peers: "name": ["url", "user", "password"] or an object with Url, '
                "Username, Password, HttpHeaders, ... fields.",
            ),
            _o("OrthancPeersInDatabase", False, "Keep peers in the database instead."),
            _o("HttpProxy", "", 'Proxy for outgoing HTTP, e.g. "user:pw@192.168.0.1:3128".'),
            _o("HttpVerbose", False, "Log the details of outgoing HTTP requests."),
            _o("HttpTimeout", 60, "Seconds before an outgoing HTTP request fails."),
            _o("HttpsVerifyPeers", True, "Check the certificates of HTTPS peers."),
            _o("HttpsCACertificates", "", "PEM file of the certificate authorities trusted."),
            _u("Pkcs11", {"Module": "/usr/lib/pkcs11.so", "Pin": "1234"}, "PKCS#11 settings."),
        ],
    ),
    (
        "Archive behaviour",
        [
            _o("UserMetadata", {}, 'Named metadata: {"Name": number from 1024 to 65535}.'),
            _o("UserContentType", {}, 'Named attachments: {"name": number or [number, "mime"]}.'),
            _o("StableAge", 60, "Seconds without new instances before a resource is stable."),
            _o("StoreMD5ForAttachments", True, "Record the MD5 of stored files."),
            _o("LimitFindResults", 0, "Most patients/studies/series per C-FIND; 0: no limit."),
            _o("LimitFindInstances", 0, "Most instances per C-FIND; 0: no limit."),
            _o("LogExportedResources", False, "Record exported resources in /exports."),
            _o("StoreDicom", True, "Keep the DICOM files (false: index only)."),
            _o("QueryRetrieveSize", 100, "Query/retrieve operations remembered."),
            _o("CaseSensitivePN", False, "Match person names case-sensitively in C-FIND."),
            _o("LoadPrivateDictionary", True, "Know the usual private tags."),
            _u("Locale", "en_US.UTF-8", "Locale for case-insensitive comparisons."),
            _o("Dictionary", {}, 'Extra tags: {"0014,1020": ["DA", "Name", 1, 1]}.'),
            _u("ExternalDictionaries", ["/usr/share/dict.dic"], "DCMTK-format dictionaries."),
            _o("SynchronousCMove", True, "Run C-MOVE in the request (false: as a job)."),
            _o("JobsHistorySize", 10, "Finished jobs remembered."),
            _o("SaveJobs", True, "Keep jobs in the database across restarts."),
            _o("OverwriteInstances", False, "Replace an instance stored again."),
            _o("MediaArchiveSize", 1, "Asynchronous archives kept for download."),
            _o(
                "StorageAccessOnFind",
                "Always",
                'Reading files during searches: "Always", "Answers" or "Never".',
            ),
            _o("MetricsEnabled", True, "Serve /tools/metrics-prometheus."),
            _o("DefaultPrivateCreator", "", "Private creator used when none is given."),
            _o("StorageCommitmentReportsSize", 100, "Storage commitment reports remembered."),
            _o("TranscodeDicomProtocol", True, "Transcode for peers refusing the original."),
            _o("BuiltinDecoderTranscoderOrder", "After", '"After", "Before" or "Disabled".'),
            _u("IngestTranscoding", "1.2.840.10008.1.2.1", "Transcode incoming instances."),
            _o("IngestTranscodingOfUncompressed", True, "Ingest transcoding of uncompressed."),
            _o("IngestTranscodingOfCompressed", True, "Ingest transcoding of compressed."),
            _o("DicomLossyTranscodingQuality", 90, "Quality (1-100) of lossy transcoding."),
            _o("SyncStorageArea", True, "Flush every stored file to disk (fsync)."),
            _o("MallocArenaMax", 5, "Memory arenas (Orthanc tuning; ignored by dicomhub)."),
            _o("DeidentifyLogs", True, "Remove patient data from logged DICOM queries."),
            _o("DeidentifyLogsDicomVersion", "2023b", "DICOM edition of the rules used."),
            _u("DatabaseServerIdentifier", "dicomhub1", "Name of this server in a shared DB."),
            _o("CheckRevisions", False, "Protect metadata and attachments with revisions."),
            _o("SynchronousZipStream", True, "Stream ZIP archives while they are built."),
            _o("ZipLoaderThreads", 0, "Threads reading files for ZIP archives."),
            _o(
                "ExtraMainDicomTags",
                {},
                'More tags kept in the index: {"Instance": ["Rows", ...], "Series": [...]}.',
            ),
            _o(
                "Warnings",
                {"W001_TagsBeingReadFromStorage": True, "W002_InconsistentDicomTagsInDb": True},
                "Warnings that may be logged.",
            ),
        ],
    ),
    (
        "dicomhub extensions (not in Orthanc)",
        [
            _u(
                "HttpBindAddress",
                "127.0.0.1",
                "Address of the HTTP listener. Default: all interfaces when "
                "RemoteAccessAllowed is true, the loopback interface otherwise.",
            ),
            _u(
                "DicomBindAddress",
                "127.0.0.1",
                "Address of the DICOM listener. Default: all interfaces, as Orthanc.",
            ),
            _o(
                "HttpWorkers",
                0,
                "Number of HTTP worker processes sharing the port, the index and the "
                "storage (Python runs one thread at a time per process, so more workers "
                "use more cores). 0: two per CPU core, at most 8. Background duties "
                "run in the first worker.",
            ),
            _u(
                "DatabaseUrl",
                "postgresql+psycopg://user:password@host/dicomhub",
                "Index database URL. Default: SQLite in IndexDirectory.",
            ),
            _o(
                "LuaTimeLimit",
                60,
                "Seconds one call into Lua (a callback, a filter, execute-script) may run "
                "before it is stopped with an error.",
            ),
            _o(
                "PythonHooks",
                [],
                "Python files defining the Lua callbacks and filters as Python functions "
                "(on_stored_instance, received_instance_filter, ...); see docs/lua.md.",
            ),
        ],
    ),
]

_OPTIONS: dict[str, _Option] = {opt.key: opt for _, opts in _SECTIONS for opt in opts}

#: Every option that has a default, with Orthanc's default value. ``AuthenticationEnabled``
#: is None here because its real default is the value of ``RemoteAccessAllowed``.
DEFAULTS: dict[str, Any] = {k: o.default for k, o in _OPTIONS.items() if o.default is not _UNSET}

#: Options that are known but absent unless configured (Orthanc has no default for them).
OPTIONAL_KEYS: frozenset[str] = frozenset(k for k, o in _OPTIONS.items() if o.default is _UNSET)

#: Sections read by Orthanc plugins. dicomhub implements DICOMweb itself; the others are
#: accepted without a warning so that a site's existing files load unchanged.
PLUGIN_SECTIONS: frozenset[str] = frozenset(
    {
        "DicomWeb",
        "Worklists",
        "PostgreSQL",
        "MySQL",
        "Odbc",
        "Python",
        "PythonScript",
        "PythonVerbose",
        "Transfers",
        "WebViewer",
        "StoneWebViewer",
        "OrthancExplorer2",
        "Authorization",
        "AwsS3Storage",
        "GoogleCloudStorage",
        "AzureBlobStorage",
        "Housekeeper",
        "DelayedDeletion",
        "MultitenantDicom",
        "ServeFolders",
        "Gdcm",
        "Wsi",
        "OHIF",
        "VolView",
        "Tcia",
        "Indexer",
        "ConnectivityChecks",
        "AdvancedStorage",
        "Java",
    }
)

_NOT_IMPLEMENTED_SECTIONS = PLUGIN_SECTIONS - {"DicomWeb", "Worklists"}


# --------------------------------------------------------------------------------------
# The loaded configuration.
# --------------------------------------------------------------------------------------

_MISSING: Any = object()

_TYPE_NAMES = {
    bool: "a Boolean (true or false)",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


class Configuration(Mapping[str, Any]):
    """The effective configuration: files, then environment overrides, then defaults.

    It is a read-only mapping from top-level key to value, so code that only needs
    ``config.get("HttpPort")`` can take any mapping (a plain dict in tests). The typed
    accessors exist so that a wrong type is reported with the option's name and where
    it was set, instead of surfacing later as an obscure failure.

    ``values`` is the dict of every option (defaults filled in). It takes the place of
    the ``Mapping.values()`` method: iterate ``config.values.values()`` if needed.
    """

    values: dict[str, Any]  # type: ignore[assignment]

    def __init__(
        self,
        values: dict[str, Any],
        sources: list[str] | None = None,
        origins: dict[str, str] | None = None,
    ) -> None:
        self.values = values
        #: The files that were read, in the order they were read.
        self.sources: list[str] = list(sources or [])
        #: For each configured top-level key, where its value came from.
        self.origins: dict[str, str] = dict(origins or {})

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> Configuration:
        """Build a configuration from values already in memory (tests, embedding).

        The values go through the same defaults and checks as a file would; environment
        overrides apply only when ``environ`` is given.
        """
        values = dict(data)
        origins = dict.fromkeys(values, "<dict>")
        _apply_environment(values, origins, environ or {})
        return _finish(values, [], origins)

    # Mapping protocol ------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        return f"Configuration(sources={self.sources!r})"

    def is_set(self, key: str) -> bool:
        """Whether ``key`` was given by a file or the environment (not a default)."""
        return key in self.origins

    # Typed access ----------------------------------------------------------------------

    def _typed(self, key: str, default: Any, kinds: tuple[type, ...]) -> Any:
        value = self.values.get(key, _MISSING)
        if value is _MISSING or (value is None and default is not _MISSING):
            if default is _MISSING:
                raise ConfigurationError(f'The configuration option "{key}" is missing')
            return default
        return _check_type(key, value, kinds, self.origins.get(key))

    def get_bool(self, key: str, default: Any = _MISSING) -> bool:
        return bool(self._typed(key, default, (bool,)))

    def get_int(self, key: str, default: Any = _MISSING) -> int:
        return int(self._typed(key, default, (int,)))

    def get_str(self, key: str, default: Any = _MISSING) -> str:
        return str(self._typed(key, default, (str,)))

    def get_list(self, key: str, default: Any = _MISSING) -> list[Any]:
        return list(self._typed(key, default, (list,)))

    def get_dict(self, key: str, default: Any = _MISSING) -> dict[str, Any]:
        return dict(self._typed(key, default, (dict,)))


def _check_type(key: str, value: Any, kinds: tuple[type, ...], origin: str | None) -> Any:
    """Return ``value`` if it is of one of ``kinds`` (JSON semantics), else raise.

    JSON has no separate integer type: 8042.0 is accepted as the integer 8042, as
    Orthanc's JSON library does, but true is not an integer.
    """
    for kind in kinds:
        if kind is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
        elif kind is float:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return value
        elif isinstance(value, kind):
            return value
    expected = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
    where = f" (set in {origin})" if origin else ""
    raise ConfigurationError(
        f'The configuration option "{key}" must be {expected}, not {json.dumps(value)}{where}'
    )


# --------------------------------------------------------------------------------------
# Loading.
# --------------------------------------------------------------------------------------


def load_configuration(
    path: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None
) -> Configuration:
    """Read the configuration at ``path`` (a file or a folder of ``*.json`` files).

    ``None`` means no file: the defaults, still overridden by ``ORTHANC__*`` variables
    so that a container configured only through its environment works. ``environ``
    (``os.environ`` by default) feeds both ``${VAR}`` expansion and the overrides.
    Raises ConfigurationError, naming the file and line, for anything that would make
    Orthanc refuse to start.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    sources: list[str] = []
    if path is not None:
        for file in _configuration_files(os.fspath(path)):
            log.warning("Reading the configuration from: %s", file)
            content = _read_file(file, env)
            sources.append(file)
            for key, value in content.items():
                if key in origins:
                    raise ConfigurationError(
                        f'The configuration option "{key}" is defined in 2 different '
                        f"configuration files: {origins[key]} and {file}",
                        path=file,
                    )
                values[key] = value
                origins[key] = file
    _apply_environment(values, origins, env)
    if path is not None and "Name" not in values:
        values["Name"] = ""  # as Orthanc: "MyOrthanc" is the default without any file
    configuration = _finish(values, sources, origins)
    if path is not None:
        folder = os.fspath(path)
        _resolve_paths(
            configuration.values, folder if os.path.isdir(folder) else os.path.dirname(folder)
        )
    return configuration


#: Top-level options naming a file or folder (a string, or a list of them).
PATH_OPTIONS = (
    "StorageDirectory",
    "IndexDirectory",
    "TemporaryDirectory",
    "LuaScripts",
    "PythonHooks",
)


def _resolve_paths(values: dict[str, Any], folder: str) -> None:
    """Relative paths name files beside the configuration, as Orthanc reads them (the
    folder of the configuration file, or the configuration folder itself), not in the
    folder the server was started from. Defaults too: ``OrthancStorage``."""
    base = os.path.abspath(folder)

    def resolved(value: Any) -> Any:
        if isinstance(value, str) and value and not os.path.isabs(value):
            return os.path.join(base, os.path.expanduser(value))
        return value

    for key in PATH_OPTIONS:
        value = values.get(key)
        if value is not None:
            values[key] = (
                [resolved(v) for v in value] if isinstance(value, list) else resolved(value)
            )
    worklists = values.get("Worklists")
    if isinstance(worklists, dict) and "Database" in worklists:
        values["Worklists"] = {**worklists, "Database": resolved(worklists["Database"])}


def _configuration_files(path: str) -> list[str]:
    if os.path.isdir(path):
        log.warning('Scanning folder "%s" for configuration files', path)
        names = sorted(
            name
            for name in os.listdir(path)
            if name.lower().endswith(".json") and os.path.isfile(os.path.join(path, name))
        )
        return [os.path.join(path, name) for name in names]
    if os.path.isfile(path):
        return [path]
    raise ConfigurationError(f"Inexistent path to configuration: {path}", path=path)


def _read_file(path: str, environ: Mapping[str, str]) -> dict[str, Any]:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot read the configuration file {path}: {exc.strerror}", path=path
        ) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # Orthanc loads such a file (a Windows editor's Latin-1): read it as Latin-1,
        # which every byte is, rather than refuse a configuration that works there.
        line = raw.count(b"\n", 0, exc.start) + 1
        log.warning("The configuration file %s is not UTF-8 (line %d): read as Latin-1", path, line)
        text = raw.decode("latin-1")
    return parse_configuration_text(text, path, environ)


def parse_configuration_text(
    text: str, source: str = "<text>", environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Parse one configuration document the way Orthanc reads a file.

    Comments are blanked out (keeping line breaks, so error lines stay right), then
    ``${...}`` is expanded, then trailing commas are dropped and the JSON is parsed.
    """
    env = os.environ if environ is None else environ
    stripped = _strip_comments(text, source)
    expanded = expand_variables(stripped, env)
    cleaned = _drop_trailing_commas(expanded)
    if not cleaned.strip():
        _malformed(source, 1, 1, "the file is empty")

    def keep_last(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                log.warning('The key "%s" appears twice in %s: the last value is used', key, source)
            result[key] = value
        return result

    try:
        document = json.loads(cleaned, object_pairs_hook=keep_last, strict=False)
    except json.JSONDecodeError as exc:
        _malformed(source, exc.lineno, exc.colno, exc.msg)
    if not isinstance(document, dict):
        _malformed(source, 1, 1, "the root must be a JSON object")
    return document


def _malformed(source: str, line: int, column: int, why: str) -> NoReturn:
    raise ConfigurationError(
        f"The configuration file {source} does not follow the JSON syntax: "
        f"line {line}, column {column}: {why}",
        path=source,
        line=line,
        column=column,
    )


def _outside_strings(
    text: str, starts: str, rewrite: Callable[[str, int], tuple[str, int] | None]
) -> str:
    """``text`` with its JSON strings kept as they are and, outside them, each place
    ``i`` holding one of the characters ``starts`` where ``rewrite(text, i)`` answers
    ``(replacement, end)`` replaced up to ``end`` (``None``: the character stays)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            end = _string_end(text, i)
            out.append(text[i:end])
        elif c in starts and (rewritten := rewrite(text, i)):
            piece, end = rewritten
            out.append(piece)
        else:
            out.append(c)
            end = i + 1
        i = end
    return "".join(out)


def _strip_comments(text: str, source: str) -> str:
    """Blank out ``//`` and ``/* */`` comments, leaving strings (and line breaks) alone."""

    def comment(text: str, i: int) -> tuple[str, int] | None:
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            return " " * (end - i), end
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                line = text.count("\n", 0, i) + 1
                _malformed(source, line, i - text.rfind("\n", 0, i), "unterminated /* comment")
            end += 2
            return "".join(ch if ch == "\n" else " " for ch in text[i:end]), end
        return None

    return _outside_strings(text, "/", comment)


def _string_end(text: str, start: int) -> int:
    """Index just after the JSON string opening at ``start`` (or the end of the text)."""
    i, n = start + 1, len(text)
    while i < n:
        if text[i] == "\\":
            i += 2
        elif text[i] == '"':
            return i + 1
        else:
            i += 1
    return n


def _drop_trailing_commas(text: str) -> str:
    """Blank out each comma that only white space separates from a ``}`` or ``]``."""

    def trailing_comma(text: str, i: int) -> tuple[str, int] | None:
        j, n = i + 1, len(text)
        while j < n and text[j] in " \t\r\n":
            j += 1
        return (" ", i + 1) if j < n and text[j] in "}]" else None

    return _outside_strings(text, ",", trailing_comma)


_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def expand_variables(text: str, environ: Mapping[str, str]) -> str:
    """Replace ``${NAME}`` and ``${NAME:-default}`` as Orthanc does.

    The name is taken verbatim (no trimming); the default applies only when the
    variable is unset; an unset variable without a default becomes "".
    """

    def replace(match: re.Match[str]) -> str:
        name, sep, default = match.group(1).partition(":-")
        if name in environ:
            return environ[name]
        return default if sep else ""

    return _VARIABLE.sub(replace, text)


# --------------------------------------------------------------------------------------
# Environment overrides (the conventions of the official Orthanc Docker images).
# --------------------------------------------------------------------------------------

_ENV_PREFIX = "ORTHANC__"


def _normalized(name: str) -> str:
    return name.replace("_", "").lower()


def _camel_case(token: str) -> str:
    return "".join(part[:1].upper() + part[1:].lower() for part in token.split("_"))


def _key_for(token: str, existing: Mapping[str, Any], known: set[str] | frozenset[str]) -> str:
    """The JSON key an environment-variable token designates.

    The Docker images turn ``HTTPS_CA_CERTIFICATES`` into ``HttpsCaCertificates`` and
    keep a list of exceptions; matching against the keys already present or known,
    ignoring case and underscores, finds ``HttpsCACertificates`` and any other
    irregular spelling without such a list.
    """
    wanted = _normalized(token)
    for key in sorted(known) + list(existing):
        if _normalized(key) == wanted:
            return key
    return _camel_case(token)


def _env_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _merge(target: dict[str, Any], key: str, value: Any) -> None:
    current = target.get(key)
    if isinstance(current, dict) and isinstance(value, dict):
        merged = dict(current)
        for sub_key, sub_value in value.items():
            _merge(merged, sub_key, sub_value)
        target[key] = merged
    else:
        target[key] = value


_TOP_LEVEL_KEYS: frozenset[str] = frozenset(_OPTIONS) | PLUGIN_SECTIONS


def _apply_environment(
    values: dict[str, Any], origins: dict[str, str], environ: Mapping[str, str]
) -> None:
    # The Docker images write these values into a file that Orthanc then reads, so
    # "${VAR}" inside them is expanded as in a file.
    document = environ.get("ORTHANC_JSON")
    if document is not None and document.strip():
        content = parse_configuration_text(document, "ORTHANC_JSON", environ)
        for key, value in content.items():
            _override(values, origins, key, value, "environment variable ORTHANC_JSON")

    for name in sorted(environ):
        if not name.startswith(_ENV_PREFIX):
            continue
        tokens = name[len(_ENV_PREFIX) :].split("__")
        if not all(tokens):
            log.warning("Ignoring the malformed environment variable %s", name)
            continue
        raw = expand_variables(environ[name], environ)
        value = _env_value(raw)
        top = _key_for(tokens[0], values, _TOP_LEVEL_KEYS)
        option = _OPTIONS.get(top)
        if len(tokens) == 1 and option and str in option.accepted():
            # ORTHANC__DICOM_AET=12345 means the string "12345", not a number.
            value = value if isinstance(value, option.accepted()) else raw
        path = [top]
        container: Mapping[str, Any] = values.get(top) or {}
        known: set[str] = set(_nested_defaults(top))
        for token in tokens[1:]:
            key = _key_for(token, container if isinstance(container, Mapping) else {}, known)
            path.append(key)
            nested = container.get(key) if isinstance(container, Mapping) else None
            container = nested if isinstance(nested, Mapping) else {}
            known = set()
        for key in reversed(path[1:]):
            value = {key: value}
        _override(values, origins, top, value, f"environment variable {name}")


def _nested_defaults(top: str) -> dict[str, Any]:
    default = DEFAULTS.get(top)
    return default if isinstance(default, dict) else {}


def _override(
    values: dict[str, Any], origins: dict[str, str], key: str, value: Any, origin: str
) -> None:
    if key in origins and not (isinstance(value, dict) and isinstance(values.get(key), dict)):
        log.info("%s overrides the value of %s given in %s", origin, key, origins[key])
    _merge(values, key, value)
    origins[key] = origin


# --------------------------------------------------------------------------------------
# Defaults, derived values and checks.
# --------------------------------------------------------------------------------------


def _finish(values: dict[str, Any], sources: list[str], origins: dict[str, str]) -> Configuration:
    for key in values:
        if key in _OPTIONS or key in PLUGIN_SECTIONS:
            if key in _NOT_IMPLEMENTED_SECTIONS:
                log.info(
                    'The configuration section "%s" belongs to an Orthanc plugin that dicomhub '
                    "does not provide; it is ignored",
                    key,
                )
            continue
        hint = difflib.get_close_matches(key, list(_OPTIONS), n=1)
        suggestion = f' (did you mean "{hint[0]}"?)' if hint else ""
        log.warning(
            'Unknown configuration option "%s" in %s, ignored%s',
            key,
            origins.get(key, "the configuration"),
            suggestion,
        )

    effective: dict[str, Any] = {}
    for key, option in _OPTIONS.items():
        value = values.get(key, _MISSING)
        if value is _MISSING or value is None:  # null in a file means "use the default"
            if option.default is not _UNSET:
                effective[key] = _copy(option.default)
            continue
        value = _check_type(key, value, option.accepted(), origins.get(key))
        if isinstance(option.default, dict) and option.default and isinstance(value, dict):
            value = {**option.default, **value}
        effective[key] = value
    for key, value in values.items():
        effective.setdefault(key, value)

    # Orthanc derives these two defaults from other options.
    if values.get("IndexDirectory") is None:
        effective["IndexDirectory"] = effective["StorageDirectory"]
    if values.get("AuthenticationEnabled") is None:
        effective["AuthenticationEnabled"] = effective["RemoteAccessAllowed"]
    return Configuration(effective, sources, {k: origins[k] for k in values if k in origins})


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value)) if isinstance(value, dict | list) else value


# --------------------------------------------------------------------------------------
# The commented default file written by ``dicomhub --config=FILE``.
# --------------------------------------------------------------------------------------


def _render(value: Any, indent: str) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    if isinstance(value, dict | list) and len(value) <= 1 and len(text) < 60:
        text = json.dumps(value, ensure_ascii=False)
    return text.replace("\n", "\n" + indent)


def _wrap(text: str, indent: str, width: int = 86) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return [f"{indent}// {item}" for item in lines]


def default_configuration_text() -> str:
    """The commented configuration that ``dicomhub --config=FILE`` writes.

    Every option appears with its default; options without a default appear commented
    out with an example. The result loads back to exactly the defaults.
    """
    indent = "  "
    entries: list[list[str]] = []
    header = [
        "{",
        f"{indent}// dicomhub configuration, in the format of Orthanc configuration files.",
        f"{indent}// Keep only the options you change: the others take the values shown here.",
        f"{indent}// A folder of *.json files can be given instead of one file. Comments are",
        f'{indent}// allowed, "${{VAR}}" and "${{VAR:-default}}" take values from the',
        f"{indent}// environment, and ORTHANC__SECTION__KEY environment variables override",
        f"{indent}// options (e.g. ORTHANC__DICOM_AET=ARCHIVE).",
    ]
    last_real = -1
    for title, options in _SECTIONS:
        entries.append(["", f"{indent}// ===== {title} ====="])
        for option in options:
            lines = [""] + _wrap(option.doc, indent)
            if option.default is _UNSET or option.default is None:
                example = option.example if option.default is _UNSET else False
                rendered = _render(example, indent + "// ")
                lines.append(f'{indent}// "{option.key}" : {rendered},')
                entries.append(lines)
            else:
                lines.append(f'{indent}"{option.key}" : {_render(option.default, indent)},')
                entries.append(lines)
                last_real = len(entries) - 1
    body = entries[last_real]
    body[-1] = body[-1][:-1]  # no comma after the last option that is not commented out
    text_lines = header + [line for entry in entries for line in entry] + ["}", ""]
    return "\n".join(text_lines)
