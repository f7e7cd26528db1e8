"""`datacenter serve` and the WSGI entry point (the real gunicorn run is in tests/e2e)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from datacenter.cli import main
from datacenter.web.serve import StderrLogger, gunicorn_options
from tests.fixtures.web import SeededStore, csrf_token, login


def test_gunicorn_runs_without_control_socket_and_logs_to_stderr() -> None:
    options = gunicorn_options(bind="127.0.0.1:8080", workers=3)
    assert options["control_socket_disable"] is True
    assert options["bind"] == ["127.0.0.1:8080"] and options["workers"] == 3
    assert options["accesslog"] == "-" and options["errorlog"] == "-"
    assert options["logger_class"] is StderrLogger
    assert options["worker_class"] == "gthread" and options["threads"] > 1


@pytest.mark.parametrize(
    "bind", ["8080", "localhost", ":8080", "127.0.0.1:http", "127.0.0.1:70000"]
)
def test_serve_refuses_a_bad_bind(bind: str) -> None:
    result = CliRunner().invoke(main, ["serve", "--bind", bind])
    assert result.exit_code == 2
    assert "is not HOST:PORT" in result.output


def test_serve_refuses_an_uninitialised_store(tmp_path: Path) -> None:
    config = tmp_path / "dc.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n')
    result = CliRunner().invoke(main, ["serve", "--config", str(config), "--bind", "127.0.0.1:1"])
    assert result.exit_code == 8  # StoreError: not migrated
    assert "run `datacenter init`" in result.output
    assert "Traceback" not in result.output


def test_wsgi_module_builds_the_app_from_the_config_env(
    seeded_store: SeededStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLCOLLECT_DC_CONFIG", str(seeded_store.config_path))
    monkeypatch.delitem(sys.modules, "datacenter.web.wsgi", raising=False)
    wsgi = importlib.import_module("datacenter.web.wsgi")
    try:
        client = wsgi.app.test_client()
        assert client.get("/").headers["Location"] == "/login"
        assert csrf_token(client)
        login(client)
        assert client.get("/calls").status_code == 200
    finally:
        wsgi.app.extensions["callcollect.store"].dispose()
        sys.modules.pop("datacenter.web.wsgi", None)
