"""What the agent exposes: listeners on loopback unless configured, /metrics elsewhere only with
a bearer token, and call data owner-only on disk (modes checked with ``os.stat``)."""

from __future__ import annotations

import os
import stat
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import from_mapping
from edge_agent.delivery.batches import Batcher
from edge_agent.health.metrics import start_metrics
from edge_agent.sources.mcs_ipsmdr.driver import DEFAULT_LISTEN_HOST
from edge_agent.spool import Spool
from shared.errors import ConfigError
from shared.heartbeat import Heartbeat
from tests.factories import gen_icdr
from tests.unit.test_config import BASE, minimal

TOKEN = "s3cret-token-0123456789abcdef"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def metrics_config(**metrics: Any) -> dict[str, Any]:
    raw = minimal()
    raw["metrics"] = metrics
    return raw


@pytest.mark.parametrize("listen", ["0.0.0.0:9108", "192.0.2.7:9108", "[::]:9108"])
def test_a_non_loopback_metrics_listener_without_a_token_is_a_config_error(listen: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_mapping(metrics_config(listen=listen), base=BASE)
    assert "metrics.listen" in str(caught.value) and "metrics.token_file" in str(caught.value)


@pytest.mark.parametrize("listen", ["127.0.0.1:9108", "[::1]:9108", "localhost:9108", ""])
def test_loopback_or_off_needs_no_token(listen: str) -> None:
    assert from_mapping(metrics_config(listen=listen), base=BASE).metrics.token_file is None


def test_a_token_allows_any_address(tmp_path: Path) -> None:
    token = tmp_path / "token"
    settings = from_mapping(metrics_config(listen="0.0.0.0:9108", token_file=str(token)), base=BASE)
    assert settings.metrics.token_file == token


class Snapshot:
    """The least ``SnapshotSource``: no heartbeat yet, so only ``agent_info`` is served."""

    def __init__(self) -> None:
        self.settings = from_mapping(minimal(), base=BASE)
        self.version = "9.9.9"
        self.heartbeats_sent = 0

    def current(self) -> Heartbeat | None:
        return None


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[str]:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    server = start_metrics("127.0.0.1:0", Snapshot(), token_file=token_file)
    try:
        yield f"http://127.0.0.1:{server.port}/metrics"
    finally:
        server.close()


def fetch(url: str, authorization: str | None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if authorization is not None:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN])
def test_metrics_with_a_token_refuse_any_other_authorization(
    guarded: str, authorization: str | None
) -> None:
    status, body = fetch(guarded, authorization)
    assert status == 401 and "callcollect" not in body


def test_metrics_with_a_token_serve_the_bearer(guarded: str) -> None:
    status, body = fetch(guarded, f"Bearer {TOKEN}")
    assert status == 200 and "callcollect_agent_info{" in body


def test_a_short_token_is_refused(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("short\n")
    with pytest.raises(ConfigError, match=r"metrics\.token_file"):
        start_metrics("127.0.0.1:0", Snapshot(), token_file=tmp_path / "token")


def test_the_mcs_push_listener_binds_loopback_by_default() -> None:
    assert DEFAULT_LISTEN_HOST == "127.0.0.1"


def test_spool_batches_and_folders_are_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    state = tmp_path / "state"
    old = os.umask(0)
    try:
        with Spool.open(state, quota_bytes=2**30) as spool:
            spool.store("pbx-1", [(1, gen_icdr(1))], [], cursor=1)
            batcher = Batcher(spool, state_dir=state, agent_id="edge-1", tenant="acme")
            sealed = batcher.seal_ready(datetime.now(UTC), force=True)
            # SQLite gives -wal and -shm the database file's mode when it creates them
            files = [state / "spool.db", state / "spool.db-wal", state / "spool.db-shm"]
            assert [mode(p) for p in [*files, sealed[0].path]] == [0o600] * 4
    finally:
        os.umask(old)
    assert [mode(d) for d in (state, state / "outbox", state / "sent")] == [0o700] * 3
