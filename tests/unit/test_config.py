"""Config: every bad value names its key and the fix; unknown keys fail; docs list every key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from edge_agent import config
from edge_agent.config import SETTINGS, from_mapping, load, loads, reference_markdown
from shared.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
BASE = Path("/etc/callcollect")


def minimal() -> dict[str, Any]:
    return {
        "agent": {"id": "acme-leeds-01", "tenant": "acme", "timezone": "Europe/London"},
        "uplink": {"host": "127.0.0.1", "username": "acme", "private_key": "key",
                   "known_hosts": "known_hosts"},
        "sources": [{"id": "pbx-main", "kind": "mivb-smdr", "host": "127.0.0.1", "port": 1752}],
        "delivery": {"datacentre_certificates": "datacentre-certificates.pem"},
    }  # fmt: skip


def with_value(key: str, value: Any) -> dict[str, Any]:
    raw = minimal()
    section, _, name = key.partition(".")
    raw.setdefault(section, {})[name] = value
    return raw


def test_minimal_config_takes_every_default() -> None:
    settings = from_mapping(minimal(), base=BASE)
    assert settings.agent.timezone == ZoneInfo("Europe/London")
    assert settings.agent.state_dir == Path("/var/lib/callcollect")
    assert settings.spool.batch_max_records == 5000
    assert settings.spool.quota_bytes == 1024 * 1024 * 1024
    assert settings.uplink.port == 22 and settings.uplink.remote_dir == "incoming"
    assert settings.uplink.private_key == BASE / "key"  # relative to the config file
    assert settings.metrics.listen == ""
    assert settings.delivery.protection == "cms"  # signed and encrypted unless told otherwise
    assert settings.delivery.datacentre_certificates == BASE / "datacentre-certificates.pem"
    (source,) = settings.sources
    assert (source.id, source.kind, dict(source.options)) == (
        "pbx-main", "mivb-smdr", {"host": "127.0.0.1", "port": 1752},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("agent.id", "acme leeds", "agent.id': 'acme leeds' is not allowed"),
        ("agent.id", "", "agent.id': must not be empty"),
        ("agent.id", 7, "agent.id': expected a string, got an integer"),
        ("agent.timezone", "Europe/Leeds", "agent.timezone': 'Europe/Leeds' is not a known IANA"),
        ("agent.timezone", "../../etc/passwd", "agent.timezone'"),
        ("spool.quota_mb", 0, "spool.quota_mb': 0 is out of range. Fix: use a value from 16"),
        ("spool.quota_mb", "1G", "spool.quota_mb': expected an integer, got a string"),
        ("spool.batch_max_records", True, "batch_max_records': expected an integer, got a bool"),
        ("uplink.port", 70000, "uplink.port': 70000 is out of range"),
        ("uplink.connect_timeout_seconds", 0, "connect_timeout_seconds': 0 is out of range"),
        ("uplink.backoff_max_seconds", 1.0, "backoff_max_seconds': is smaller than"),
        ("metrics.listen", "9108", "metrics.listen': '9108' is not HOST:PORT"),
        ("metrics.listen", "127.0.0.1:0", "is not HOST:PORT"),
        ("delivery.datacentre_certificates", "", 'is required when delivery.protection is "cms"'),
    ],
)
def test_bad_values_name_the_key_and_the_fix(key: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_mapping(with_value(key, value), base=BASE)
    assert message in str(caught.value)
    assert "Fix: " in str(caught.value)


@pytest.mark.parametrize("key", [s.key for s in SETTINGS if s.required])
def test_missing_required_key(key: str) -> None:
    raw = minimal()
    section, _, name = key.partition(".")
    del raw[section][name]
    with pytest.raises(ConfigError) as caught:
        from_mapping(raw, base=BASE)
    assert caught.value.key == key
    assert f"add `{name} = ...` under [{section}]" in caught.value.fix


@pytest.mark.parametrize(
    ("raw_change", "key", "fix"),
    [
        ({"uplink": {"intervall_seconds": 5}}, "uplink.intervall_seconds", "keys of [uplink] are"),
        ({"uplinks": {}}, "uplinks", "use only [agent]"),
        ({"spool": 5}, "spool", "write it as [spool]"),
    ],
)
def test_unknown_keys_and_sections(raw_change: dict[str, Any], key: str, fix: str) -> None:
    raw = minimal()
    for section, table in raw_change.items():
        if isinstance(table, dict) and isinstance(raw.get(section), dict):
            raw[section].update(table)
        else:
            raw[section] = table
    with pytest.raises(ConfigError) as caught:
        from_mapping(raw, base=BASE)
    assert caught.value.key == key
    assert fix in caught.value.fix


@pytest.mark.parametrize(
    ("sources", "key", "problem"),
    [
        ([{"id": "a", "kind": "k"}, {"id": "b"}], "sources[1].kind", "is required"),
        ([{"kind": "k"}], "sources[0].id", "is required"),
        ([{"id": "PBX 1", "kind": "k"}], "sources[0].id", "'PBX 1' is not allowed"),
        ([{"id": "a", "kind": "k"}, {"id": "a", "kind": "k"}], "sources[1].id", "used by another"),
        ([{"id": "a", "kind": 3}], "sources[0].kind", "expected a string"),
        ({"id": "a"}, "sources", "must be an array of tables"),
    ],
)
def test_bad_sources(sources: Any, key: str, problem: str) -> None:
    raw = minimal()
    raw["sources"] = sources
    with pytest.raises(ConfigError) as caught:
        from_mapping(raw, base=BASE)
    assert (caught.value.key, problem in caught.value.problem) == (key, True)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[agent\nid = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(bad)


def test_load_resolves_paths_next_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        '[agent]\nid = "a1"\ntenant = "t"\ntimezone = "UTC"\nstate_dir = "state"\n'
        '[uplink]\nhost = "h"\nusername = "u"\nprivate_key = "k"\nknown_hosts = "kh"\n'
        '[delivery]\ndatacentre_certificates = "dc.pem"\n'
    )
    settings = load(path)
    assert settings.agent.state_dir == tmp_path / "state"
    assert settings.uplink.known_hosts == tmp_path / "kh"
    assert settings.sources == () and settings.path == path


def test_example_config_is_valid_and_sets_every_key() -> None:
    path = ROOT / "edge_agent" / "agent.example.toml"
    settings = load(path)
    assert settings.sources[0].kind == "mivb-smdr"
    raw = tomllib.loads(path.read_text())
    written = {f"{section}.{name}" for section, table in raw.items() if section != "sources"
               for name in table}  # fmt: skip
    assert written == {s.key for s in SETTINGS}


def test_every_setting_is_documented_and_the_table_is_current() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text()
    block = re.search(r"<!-- settings:begin -->\n(.*?)<!-- settings:end -->", page, re.S)
    assert block is not None, "docs/configuration.md lost its settings markers"
    assert block.group(1) == reference_markdown(), "regenerate the table (see the page)"
    for setting in SETTINGS:
        assert f"`{setting.key}`" in page


def test_every_setting_has_help_and_a_valid_default() -> None:
    for setting in SETTINGS:
        assert setting.help.endswith("."), setting.key
        if not setting.required:
            setting.kind.convert(setting.key, setting.default, base=BASE)


def test_loads_reports_the_first_problem_only_once() -> None:
    with pytest.raises(ConfigError) as caught:
        loads("[agent]\nid = 'x'\n", base=BASE)
    assert caught.value.key == "agent.tenant"
    assert config.SETTINGS_BY_KEY["agent.tenant"].required
