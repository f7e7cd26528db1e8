"""Data-centre settings: defaults, TOML, environment overrides, errors, the secret key."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from datacenter.settings import SETTINGS, load_secret_key, load_settings
from shared.errors import ConfigError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "datacenter.md"
EXAMPLE = Path(__file__).resolve().parents[2] / "datacenter" / "datacenter.example.toml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "datacenter.toml"
    path.write_text(text)
    return path


def test_defaults_hang_off_data_dir(tmp_path: Path) -> None:
    settings = load_settings(env={"CALLCOLLECT_DC_DATA_DIR": str(tmp_path)})
    assert settings.data_dir == tmp_path
    assert settings.store.url == f"sqlite:///{tmp_path / 'callcollect.db'}"
    assert settings.landing.root == tmp_path / "landing"
    assert settings.landing.tenant_dir("acme", "incoming") == tmp_path / "landing/acme/incoming"
    assert settings.web.secret_key_file == tmp_path / "secret_key"
    assert (settings.web.bind, settings.web.workers) == ("127.0.0.1:8080", 2)
    assert (settings.ingest.poll_seconds, settings.ingest.claim_timeout_seconds) == (5.0, 600.0)
    assert settings.source is None


def test_file_values_relative_paths_and_env_overrides(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
data_dir = "state"
[store]
url = "postgresql+psycopg://cc@127.0.0.1/callcollect"
[landing]
root = "/srv/landing"
[web]
bind = "0.0.0.0:9000"
workers = 4
[ingest]
poll_seconds = 2.5
""",
    )
    settings = load_settings(path, env={"CALLCOLLECT_DC_WEB_WORKERS": "8"})
    assert settings.data_dir == tmp_path / "state"  # relative to the file's folder
    assert settings.store.url == "postgresql+psycopg://cc@127.0.0.1/callcollect"
    assert settings.landing.root == Path("/srv/landing")
    assert (settings.web.bind, settings.web.workers) == ("0.0.0.0:9000", 8)
    assert settings.ingest.poll_seconds == 2.5
    assert settings.source == path


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = _write(tmp_path, '[web]\nbind = "127.0.0.1:8181"\n')
    assert load_settings(env={"CALLCOLLECT_DC_CONFIG": str(path)}).web.bind == "127.0.0.1:8181"


@pytest.mark.parametrize(
    ("text", "env", "key", "message"),
    [
        ("[web]\nworkers = 0\n", {}, "web.workers", "out of range"),
        ('[web]\nworkers = "four"\n', {}, "web.workers", "whole number"),
        ("[web]\nworkers = 2.5\n", {}, "web.workers", "whole number"),
        ('[web]\nbind = "localhost"\n', {}, "web.bind", "not HOST:PORT"),
        ("[ingest]\npoll_seconds = 0\n", {}, "ingest.poll_seconds", "out of range"),
        (
            "[ingest]\nclaim_timeout_seconds = 5\n",
            {},
            "ingest.claim_timeout_seconds",
            "out of range",
        ),
        ('[store]\nurl = "callcollect.db"\n', {}, "store.url", "not a database URL"),
        ("[store]\nurl = 5\n", {}, "store.url", "expected a string"),
        ('[store]\nread_url = "sqlite:///r.db"\n', {}, "store.read_url", "not a PostgreSQL URL"),
        ("data_dir = 5\n", {}, "data_dir", "expected a path"),
        ("[web]\nport = 80\n", {}, "web.port", "not a known setting"),
        ("[ingest]\nbogus = 1\n", {}, "ingest.bogus", "not a known setting"),
        ("[web\n", {}, "--config", "not valid TOML"),
        ("", {"CALLCOLLECT_DC_WEB_WORKERS": "many"}, "web.workers", "whole number"),
    ],
)
def test_bad_settings_name_the_key(
    tmp_path: Path, text: str, env: dict[str, str], key: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(_write(tmp_path, text), env=env)
    assert info.value.key == key
    assert info.value.fix


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", env={})


def test_secret_key_is_generated_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    first = load_secret_key(path)
    assert len(first) >= 64
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_secret_key(path) == first
    assert load_secret_key(tmp_path / "other") != first


def test_workers_starting_at_once_agree_on_one_whole_secret(tmp_path: Path) -> None:
    # gunicorn's workers all load the app at once: before, one could read the file another had
    # created but not yet written, and die on an empty secret, taking the server down.
    paths = [tmp_path / f"secret_key_{n}" for n in range(20)]
    with ProcessPoolExecutor(max_workers=4) as pool:
        for path in paths:
            found = list(pool.map(load_secret_key, [path] * 8))
            assert len(set(found)) == 1 and len(found[0]) >= 64
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)


def test_short_secret_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    path.write_text("changeme\n")
    with pytest.raises(ConfigError, match="shorter than 32") as info:
        load_secret_key(path)
    assert info.value.key == "web.secret_key_file"


def test_secret_key_in_a_missing_folder_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot create"):
        load_secret_key(tmp_path / "no" / "such" / "secret_key")


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.key)
def test_every_setting_is_documented_and_in_the_example(setting: object) -> None:
    key = setting.key  # type: ignore[attr-defined]
    env = setting.env  # type: ignore[attr-defined]
    assert f"`{key}`" in DOCS.read_text(), f"docs/datacenter.md does not document {key}"
    assert f"`{env}`" in DOCS.read_text(), f"docs/datacenter.md does not name {env}"
    name = key.rsplit(".", 1)[-1]
    assert f"{name} = " in EXAMPLE.read_text(), f"the example config does not show {key}"


def test_example_config_loads(tmp_path: Path) -> None:
    """The shipped example is valid as it stands (its values are the defaults)."""
    settings = load_settings(EXAMPLE, env={})
    assert settings.web.workers == 2
