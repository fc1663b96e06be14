"""Reading Orthanc-format configurations: files, folders, comments, variables, overrides."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from dicomhub.config import (
    DEFAULTS,
    OPTIONAL_KEYS,
    Configuration,
    ConfigurationError,
    default_configuration_text,
    load_configuration,
)
from dicomhub.core.settings import MAX_AUTOMATIC_HTTP_WORKERS, Settings, http_workers

NO_ENV: dict[str, str] = {}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- defaults ----------------------------------------------------------------------------


def test_no_path_gives_orthanc_defaults() -> None:
    config = load_configuration(None, NO_ENV)
    assert config.sources == []
    assert config["HttpPort"] == 8042
    assert config["DicomPort"] == 4242
    assert config["DicomAet"] == "ORTHANC"
    assert config["StorageDirectory"] == "OrthancStorage"
    assert config["IndexDirectory"] == "OrthancStorage"
    assert config["RemoteAccessAllowed"] is False
    assert config["AuthenticationEnabled"] is False
    assert config["StableAge"] == 60
    assert config["DefaultEncoding"] == "Latin1"
    assert config["OverwriteInstances"] is False
    assert config["SyncStorageArea"] is True
    assert config["HttpCompressionEnabled"] is False  # changed to false in Orthanc 1.12.2
    assert config["RegisteredUsers"] == {} and config["DicomModalities"] == {}
    for key in DEFAULTS:
        assert key in config
    for key in OPTIONAL_KEYS:
        assert key not in config
    assert not config.is_set("HttpPort")


def test_defaults_are_not_shared_between_loads() -> None:
    first = load_configuration(None, NO_ENV)
    first["DicomModalities"]["x"] = ["X", "h", 1]
    assert load_configuration(None, NO_ENV)["DicomModalities"] == {}
    assert DEFAULTS["DicomModalities"] == {}


def test_configuration_is_a_read_only_mapping() -> None:
    config = load_configuration(None, NO_ENV)
    assert config.get("HttpPort") == 8042
    assert config.get("NoSuchKey", 7) == 7
    assert "DicomAet" in config
    assert dict(config)["Name"] == config["Name"]
    assert len(config) == len(config.values)


# --- syntax ------------------------------------------------------------------------------


def test_comments_are_allowed_but_not_inside_strings(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.json",
        """{
  // a line comment with "quotes" and /* an opener
  "Name" : "http://example.org/a//b", /* a block
     comment over lines, with // inside */
  "DicomAet" : "A/*B*/C",   // trailing comment
  "HttpProxy" : "say \\"hi\\" // not a comment",
  /**/ "StableAge" : 5
}
""",
    )
    config = load_configuration(path, NO_ENV)
    assert config["Name"] == "http://example.org/a//b"
    assert config["DicomAet"] == "A/*B*/C"
    assert config["HttpProxy"] == 'say "hi" // not a comment'
    assert config["StableAge"] == 5
    assert config.sources == [str(path)]


def test_trailing_commas_are_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", '{ "LuaScripts" : [ "a.lua", ], "StableAge" : 3, }')
    config = load_configuration(path, NO_ENV)
    assert config["LuaScripts"] == [str(tmp_path / "a.lua")]  # beside the file
    assert config["StableAge"] == 3


def test_a_key_twice_in_one_file_keeps_the_last(tmp_path: Path, caplog) -> None:
    path = write(tmp_path / "c.json", '{ "Name" : "first", "Name" : "second" }')
    with caplog.at_level(logging.WARNING, logger="dicomhub.config"):
        assert load_configuration(path, NO_ENV)["Name"] == "second"
    assert any('"Name" appears twice' in r.getMessage() for r in caplog.records)


def test_utf8_with_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_bytes('\ufeff{ "Name" : "Hôpital" }'.encode())
    assert load_configuration(path, NO_ENV)["Name"] == "Hôpital"


# --- malformed files ---------------------------------------------------------------------


def test_malformed_file_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.json", '{\n  // fine\n  "Name" : "x"\n  "HttpPort" : 1\n}\n')
    with pytest.raises(ConfigurationError) as info:
        load_configuration(path, NO_ENV)
    message = str(info.value)
    assert str(path) in message
    assert "line 4" in message
    assert info.value.path == str(path)
    assert info.value.line == 4


def test_line_numbers_survive_block_comments(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.json", '{\n/* one\ntwo\nthree */\n"A" : nope\n}')
    with pytest.raises(ConfigurationError) as info:
        load_configuration(path, NO_ENV)
    assert info.value.line == 5


@pytest.mark.parametrize(
    ("text", "line"),
    [("", 1), ("[1, 2]", 1), ('{ "Name" : "x" }\n/* never closed', 2), ("\n\n{ oops }", 3)],
)
def test_other_malformed_files(tmp_path: Path, text: str, line: int) -> None:
    path = write(tmp_path / "bad.json", text)
    with pytest.raises(ConfigurationError) as info:
        load_configuration(path, NO_ENV)
    assert str(path) in str(info.value)
    assert f"line {line}" in str(info.value)


def test_invalid_utf8_names_the_line(tmp_path: Path, caplog) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(b'{\n "Name" : "H\xf4pital"\n}')
    with caplog.at_level(logging.WARNING, logger="dicomhub.config"):
        load_configuration(path, NO_ENV)
    assert any("line 2" in r.getMessage() for r in caplog.records)


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="Inexistent path"):
        load_configuration(tmp_path / "nothing.json", NO_ENV)


def test_wrong_type_names_the_option_and_file(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", '{ "HttpPort" : "8042" }')
    with pytest.raises(ConfigurationError) as info:
        load_configuration(path, NO_ENV)
    assert '"HttpPort" must be an integer' in str(info.value)
    assert str(path) in str(info.value)
    write(tmp_path / "c.json", '{ "RemoteAccessAllowed" : 1 }')
    with pytest.raises(ConfigurationError, match="Boolean"):
        load_configuration(path, NO_ENV)


def test_integral_floats_are_integers_and_null_means_default(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.json",
        '{ "HttpPort" : 8043.0, "StableAge" : null, "TemporaryDirectory" : null }',
    )
    config = load_configuration(path, NO_ENV)
    assert config["HttpPort"] == 8043 and isinstance(config["HttpPort"], int)
    assert config["StableAge"] == 60
    assert config.get("TemporaryDirectory") is None


# --- folders -----------------------------------------------------------------------------


def test_folder_merges_json_files_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    write(folder / "b-http.json", '{ "HttpPort" : 9000 }')
    write(folder / "a-dicom.json", '{ "DicomAet" : "ARCHIVE" } // a comment')
    write(folder / "C-UPPER.JSON", '{ "Name" : "upper" }')
    write(folder / "notes.txt", "not json at all")
    write(folder / "sub" / "nested.json", '{ "StableAge" : 1 }')
    config = load_configuration(folder, NO_ENV)
    assert config["HttpPort"] == 9000
    assert config["DicomAet"] == "ARCHIVE"
    assert config["Name"] == "upper"
    assert config["StableAge"] == 60
    assert config.sources == [
        str(folder / n) for n in ("C-UPPER.JSON", "a-dicom.json", "b-http.json")
    ]
    assert config.origins["HttpPort"] == str(folder / "b-http.json")


def test_empty_folder_gives_defaults(tmp_path: Path) -> None:
    config = load_configuration(tmp_path, NO_ENV)
    assert config.sources == [] and config["HttpPort"] == 8042


def test_a_key_in_two_files_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "a.json", '{ "RegisteredUsers" : { "alice" : "a" } }')
    write(tmp_path / "b.json", '{ "RegisteredUsers" : { "bob" : "b" } }')
    with pytest.raises(ConfigurationError) as info:
        load_configuration(tmp_path, NO_ENV)
    message = str(info.value)
    assert '"RegisteredUsers" is defined in 2 different configuration files' in message
    assert str(tmp_path / "a.json") in message and str(tmp_path / "b.json") in message


def test_malformed_file_in_folder_is_named(tmp_path: Path) -> None:
    write(tmp_path / "a.json", '{ "Name" : "ok" }')
    write(tmp_path / "b.json", '{\n"Name2" : }')
    with pytest.raises(ConfigurationError) as info:
        load_configuration(tmp_path, NO_ENV)
    assert str(tmp_path / "b.json") in str(info.value) and "line 2" in str(info.value)


# --- ${VAR} expansion --------------------------------------------------------------------


def test_variables_are_expanded(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.json",
        """{
  "Name" : "${SITE} archive",
  "DicomAet" : "${AET:-DEFAULTAET}",
  "HttpProxy" : "${UNSET_VARIABLE}",
  "HttpsCACertificates" : "${SET_BUT_EMPTY:-unused}",
  "HttpPort" : ${PORT},
  "RemoteAccessAllowed" : ${REMOTE:-false},
  "DefaultPrivateCreator" : "$SITE ${DEFAULT_WITH_COLON:-a:-b}"
}""",
    )
    env = {"SITE": "North", "PORT": "8050", "SET_BUT_EMPTY": ""}
    config = load_configuration(path, env)
    assert config["Name"] == "North archive"
    assert config["DicomAet"] == "DEFAULTAET"
    assert config["HttpProxy"] == ""
    assert config["HttpsCACertificates"] == ""  # the default applies only when unset
    assert config["HttpPort"] == 8050
    assert config["RemoteAccessAllowed"] is False
    assert config["DefaultPrivateCreator"] == "$SITE a:-b"


def test_variable_set_overrides_its_default(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", '{ "DicomAet" : "${AET:-DEFAULTAET}" }')
    assert load_configuration(path, {"AET": "FROMENV"})["DicomAet"] == "FROMENV"


def test_variables_in_comments_do_not_matter(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", '{\n // "${QUOTE}"\n "Name" : "x"\n}')
    assert load_configuration(path, {"QUOTE": '"\n'})["Name"] == "x"


# --- ORTHANC__ environment overrides -----------------------------------------------------


def test_environment_overrides_top_level_options(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", '{ "DicomAet" : "FILEAET", "HttpPort" : 9000 }')
    env = {
        "ORTHANC__DICOM_AET": "ENVAET",
        "ORTHANC__HTTP_PORT": "9100",
        "ORTHANC__REMOTE_ACCESS_ALLOWED": "true",
        "ORTHANC__NAME": "My archive",
        "ORTHANC__HTTPS_CA_CERTIFICATES": "/etc/ssl/ca.pem",
        "ORTHANC__STORE_MD5_FOR_ATTACHMENTS": "false",
        "ORTHANC__CASE_SENSITIVE_PN": "true",
        "NOT_ORTHANC__HTTP_PORT": "1",
    }
    config = load_configuration(path, env)
    assert config["DicomAet"] == "ENVAET"
    assert config["HttpPort"] == 9100
    assert config["RemoteAccessAllowed"] is True
    assert config["AuthenticationEnabled"] is True  # follows RemoteAccessAllowed
    assert config["Name"] == "My archive"
    assert config["HttpsCACertificates"] == "/etc/ssl/ca.pem"
    assert config["StoreMD5ForAttachments"] is False
    assert config["CaseSensitivePN"] is True
    assert config.origins["DicomAet"] == "environment variable ORTHANC__DICOM_AET"


def test_environment_json_values_and_nested_sections(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.json",
        '{ "DicomModalities" : { "scanner" : [ "CT1", "10.0.0.5", 104 ] } }',
    )
    env = {
        "ORTHANC__DICOM_MODALITIES__PACS": '["PACS", "127.0.0.1", 11112]',
        "ORTHANC__DICOM_MODALITIES__SCANNER": '{"AET": "CT2", "Host": "h", "Port": 1}',
        "ORTHANC__REGISTERED_USERS": '{"alice": "secret"}',
        "ORTHANC__DICOM_WEB__ROOT": "/dicom-web/",
        "ORTHANC__DICOM_WEB__ENABLE": "true",
        "ORTHANC__WARNINGS__W001_TAGS_BEING_READ_FROM_STORAGE": "false",
        "ORTHANC__LUA_SCRIPTS": '["/etc/a.lua"]',
    }
    config = load_configuration(path, env)
    assert config["DicomModalities"] == {
        "scanner": {"AET": "CT2", "Host": "h", "Port": 1},
        "Pacs": ["PACS", "127.0.0.1", 11112],
    }
    assert config["RegisteredUsers"] == {"alice": "secret"}
    assert config["DicomWeb"] == {"Root": "/dicom-web/", "Enable": True}
    assert config["Warnings"] == {
        "W001_TagsBeingReadFromStorage": False,
        "W002_InconsistentDicomTagsInDb": True,
    }
    assert config["LuaScripts"] == ["/etc/a.lua"]


def test_environment_numbers_stay_strings_for_string_options() -> None:
    config = load_configuration(None, {"ORTHANC__DICOM_AET": "12345", "ORTHANC__NAME": "true"})
    assert config["DicomAet"] == "12345" and config["Name"] == "true"


def test_environment_applies_without_a_file() -> None:
    config = load_configuration(None, {"ORTHANC__DICOM_PORT": "11112", "ORTHANC__STABLE_AGE": "5"})
    assert config["DicomPort"] == 11112 and config["StableAge"] == 5


def test_environment_value_of_wrong_type_is_reported() -> None:
    with pytest.raises(ConfigurationError, match="ORTHANC__HTTP_PORT"):
        load_configuration(None, {"ORTHANC__HTTP_PORT": "eighty"})


def test_orthanc_json_document_is_merged(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.json", '{ "Name" : "file", "OrthancPeers" : { "a" : ["http://a/"] } }'
    )
    env = {
        "ORTHANC_JSON": '{ // comment\n "Name" : "${WHO:-json}", "OrthancPeers" : { "b" : ["http://b/"] } }',
        "ORTHANC__NAME": "variable",
    }
    config = load_configuration(path, env)
    assert config["OrthancPeers"] == {"a": ["http://a/"], "b": ["http://b/"]}
    assert config["Name"] == "variable"  # ORTHANC__ variables come after ORTHANC_JSON
    del env["ORTHANC__NAME"]
    assert load_configuration(path, env)["Name"] == "json"


# --- unknown keys, derived defaults, accessors ------------------------------------------


def test_unknown_key_is_logged_as_a_warning(tmp_path: Path, caplog) -> None:
    path = write(tmp_path / "c.json", '{ "HttpPrt" : 1, "DicomWeb" : { "Root" : "/w/" } }')
    with caplog.at_level(logging.INFO, logger="dicomhub.config"):
        config = load_configuration(path, NO_ENV)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "Unknown" in r.msg]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert '"HttpPrt"' in message and str(path) in message and '"HttpPort"' in message
    assert warnings[0].name == "dicomhub.config"
    assert config["HttpPrt"] == 1  # kept, so that extensions can still read it
    assert config["DicomWeb"] == {"Root": "/w/"}


def test_plugin_sections_are_not_warned_about(tmp_path: Path, caplog) -> None:
    path = write(tmp_path / "c.json", '{ "PostgreSQL" : { "EnableIndex" : true } }')
    with caplog.at_level(logging.WARNING, logger="dicomhub.config"):
        load_configuration(path, NO_ENV)
    assert not [r for r in caplog.records if "Unknown" in r.msg]


def test_index_directory_follows_storage_directory(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", '{ "StorageDirectory" : "/data/dicom" }')
    assert load_configuration(path, NO_ENV)["IndexDirectory"] == "/data/dicom"
    write(path, '{ "StorageDirectory" : "/data/dicom", "IndexDirectory" : "/ssd/index" }')
    assert load_configuration(path, NO_ENV)["IndexDirectory"] == "/ssd/index"


def test_explicit_authentication_wins_over_remote_access(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.json",
        '{ "RemoteAccessAllowed" : true, "AuthenticationEnabled" : false }',
    )
    assert load_configuration(path, NO_ENV)["AuthenticationEnabled"] is False


def test_partial_nested_defaults_are_completed(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", '{ "JobsEngineThreadsCount" : { "Other" : 3 } }')
    assert load_configuration(path, NO_ENV)["JobsEngineThreadsCount"] == {
        "ResourceModification": 1,
        "Other": 3,
    }


def test_typed_accessors() -> None:
    config = Configuration.from_dict({"HttpPort": 9000, "DicomWeb": {"Root": 5}, "Custom": "x"})
    assert config.get_int("HttpPort") == 9000
    assert config.get_bool("RemoteAccessAllowed") is False
    assert config.get_str("DicomAet") == "ORTHANC"
    assert config.get_list("LuaScripts") == []
    assert config.get_dict("DicomWeb") == {"Root": 5}
    assert config.get_str("Missing", "fallback") == "fallback"
    assert config.get_int("Missing", 3) == 3
    with pytest.raises(ConfigurationError, match='"Custom" must be an integer'):
        config.get_int("Custom")
    with pytest.raises(ConfigurationError, match='"HttpPort" must be a Boolean'):
        config.get_bool("HttpPort")
    with pytest.raises(ConfigurationError, match="missing"):
        config.get_str("Missing")


def test_from_dict_checks_types_like_a_file() -> None:
    with pytest.raises(ConfigurationError, match="StableAge"):
        Configuration.from_dict({"StableAge": "soon"})


# --- the default configuration file ------------------------------------------------------


def test_default_text_loads_back_to_the_defaults(tmp_path: Path) -> None:
    text = default_configuration_text()
    path = write(tmp_path / "default.json", text)
    from_text = load_configuration(path, NO_ENV)
    defaults = load_configuration(None, NO_ENV).values
    # The default folders are relative: beside the file when there is one.
    for key in ("StorageDirectory", "IndexDirectory"):
        defaults[key] = str(tmp_path / defaults[key])
    assert from_text.values == defaults
    for key in DEFAULTS:
        assert f'"{key}"' in text
    for key in OPTIONAL_KEYS:
        assert f'// "{key}"' in text


def test_default_text_is_plain_json_once_comments_are_removed() -> None:
    lines = [line for line in default_configuration_text().splitlines()]
    without_comments = "\n".join(line for line in lines if not line.strip().startswith("//"))
    document = json.loads(without_comments)  # no trailing comma, no extension needed
    assert document["HttpPort"] == 8042


@pytest.mark.parametrize("value", [None, "", 0, -1])
def test_http_workers_default_to_two_per_core_at_most_eight(value: object) -> None:
    cores = len(os.sched_getaffinity(0))
    assert DEFAULTS["HttpWorkers"] == 0
    assert MAX_AUTOMATIC_HTTP_WORKERS == 8
    assert http_workers(value) == max(1, min(8, 2 * cores))
    assert Settings.from_config({"HttpWorkers": value}).http_workers == http_workers(value)


@pytest.mark.parametrize(("value", "count"), [(1, 1), (3, 3), ("2", 2), (6, 6)])
def test_http_workers_given_are_taken_as_they_are(value: object, count: int) -> None:
    assert http_workers(value) == count


def test_relative_paths_are_beside_the_configuration(tmp_path: Path) -> None:
    """As Orthanc: relative to the configuration file's folder (or the configuration
    folder), not to the folder the server was started from."""
    conf = tmp_path / "conf"
    conf.mkdir()
    path = write(
        conf / "c.json",
        '{"StorageDirectory": "store", "LuaScripts": ["s.lua", "/abs/t.lua"],'
        ' "Worklists": {"Enable": true, "Database": "wl"}}',
    )
    for source in (path, conf):
        config = load_configuration(source, NO_ENV)
        assert config["StorageDirectory"] == str(conf / "store")
        assert config["IndexDirectory"] == str(conf / "store")
        assert config["LuaScripts"] == [str(conf / "s.lua"), "/abs/t.lua"]
        assert config["Worklists"]["Database"] == str(conf / "wl")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert load_configuration(empty, NO_ENV)["StorageDirectory"] == str(empty / "OrthancStorage")
    assert load_configuration(None, NO_ENV)["StorageDirectory"] == "OrthancStorage"


def test_name_is_empty_when_a_file_does_not_give_it(tmp_path: Path) -> None:
    """Orthanc's "MyOrthanc" is the default of its embedded configuration only."""
    assert load_configuration(write(tmp_path / "c.json", "{}"), NO_ENV)["Name"] == ""
    assert load_configuration(None, NO_ENV)["Name"] == "MyOrthanc"
    env = {"ORTHANC__NAME": "FromEnv"}
    assert load_configuration(write(tmp_path / "d.json", "{}"), env)["Name"] == "FromEnv"


def test_a_latin1_file_is_read_as_latin1(tmp_path: Path, caplog) -> None:
    """Orthanc loads a configuration saved in Latin-1 (a Windows editor's): so do we,
    with a warning, rather than refuse it."""
    path = tmp_path / "c.json"
    path.write_bytes('{ "Name" : "H\u00f4pital" }'.encode("latin-1"))
    with caplog.at_level(logging.WARNING, logger="dicomhub.config"):
        assert load_configuration(path, NO_ENV)["Name"] == "H\u00f4pital"
    assert any("read as Latin-1" in r.getMessage() for r in caplog.records)
