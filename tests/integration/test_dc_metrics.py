"""``/metrics`` under the real `datacenter serve` (gunicorn, two workers), and who may scrape."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from datacenter.settings import MetricsSettings
from datacenter.web import create_app
from shared.envelope import batch_file_name, seal
from tests.factories import gen_outgoing_call
from tests.fixtures.console import ConsoleStore, seed_console_store
from tests.fixtures.ports import ServerExited, start_listening
from tests.fixtures.web import ACME_AGENT

DATACENTER = Path(sys.executable).with_name("datacenter")
TIMEOUT = 10.0
WAITING_AGE_SECONDS = 600
REQUESTS = 12


@dataclass(frozen=True)
class Served:
    url: str
    store: ConsoleStore
    multiproc_dir: Path
    log: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    store = seed_console_store(tmp_path_factory.mktemp("metrics"))
    settings = store.settings
    # An upload ingest has not taken yet (ten minutes old), and a file in quarantine.
    incoming = settings.landing.tenant_dir("acme", "incoming")
    waiting = incoming / batch_file_name(ACME_AGENT, 7)
    waiting.write_bytes(
        seal(
            [gen_outgoing_call(1, agent_id=ACME_AGENT)],
            agent_id=ACME_AGENT,
            tenant="acme",
            sequence=7,
        )
    )
    old = time.time() - WAITING_AGE_SECONDS
    os.utime(waiting, (old, old))
    (incoming / "half-uploaded.ccb.part").write_bytes(b"x")  # not finished: not counted
    quarantine = settings.landing.tenant_dir("acme", "quarantine")
    quarantine.mkdir(parents=True, exist_ok=True)
    (quarantine / batch_file_name(ACME_AGENT, 3)).write_bytes(b"garbage")
    (quarantine / (batch_file_name(ACME_AGENT, 3) + ".reason")).write_text("not a batch\n")
    # A stale file from a previous run: `datacenter serve` must wipe it.
    multiproc = settings.data_dir / "prometheus"
    multiproc.mkdir()
    (multiproc / "counter_999999.db").write_bytes(b"stale")

    log = settings.data_dir / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}

    def start(port: int) -> subprocess.Popen[bytes]:
        command = [str(DATACENTER), "serve", "--config", str(store.config_path),
                   "--bind", f"127.0.0.1:{port}", "--workers", "2"]  # fmt: skip
        with log.open("ab") as stderr:
            return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=env)

    try:
        process, port = start_listening(start, timeout=20)
    except (TimeoutError, ServerExited) as error:
        pytest.fail(f"datacenter serve did not start ({error}):\n{log.read_text()}")
    try:
        yield Served(f"http://127.0.0.1:{port}", store, multiproc, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=TIMEOUT)


def fetch(url: str) -> tuple[int, str]:
    request = urllib.request.Request(url)
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # loopback only
        return response.status, response.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_families_from_the_store_and_the_landing_area(served: Served) -> None:
    status, text = fetch(f"{served.url}/metrics")
    assert status == 200
    values = samples(text)
    assert values[("callcollect_store_up", ())] == 1
    # The seeded store ingested two files holding 121 calls.
    assert values[("callcollect_landed_files_total", (("status", "stored"),))] == 2
    assert values[("callcollect_landed_files_total", (("status", "quarantined"),))] == 0
    assert values[("callcollect_ingested_calls_total", ())] == 121
    assert values[("callcollect_ingest_waiting_files", ())] == 1
    age = values[("callcollect_ingest_oldest_waiting_seconds", ())]
    assert WAITING_AGE_SECONDS <= age < WAITING_AGE_SECONDS + 120
    assert values[("callcollect_quarantine_files", ())] == 1
    assert ("callcollect_unrated_calls", ()) in values  # rating's tables exist in this build
    sites = {labels[0][1]: v for (name, labels), v in values.items() if name == "callcollect_sites"}
    assert sites["ok"] == 1 and sites["agent_down"] == 1
    assert sites["transport_down"] == 1 and sites["source_down"] == 1
    assert sites["silent"] == 0 and sum(sites.values()) == 4
    # No alarm runner has run against this store, so nothing is open.
    assert not [k for k in values if k[0] == "callcollect_alarms_open"]


def test_request_counters_add_up_across_workers_and_survive_one_dying(served: Served) -> None:
    """Multiprocess mode: whichever worker served a request, the scrape counts it, and a
    worker's counts outlive it (gunicorn replaces it; the child_exit hook marks it dead)."""
    key = (
        "callcollect_web_requests_total",
        (("endpoint", "auth.login"), ("method", "GET"), ("status", "200")),
    )
    for _ in range(REQUESTS):
        assert fetch(f"{served.url}/login")[0] == 200
    assert samples(fetch(f"{served.url}/metrics")[1])[key] == REQUESTS
    assert not (served.multiproc_dir / "counter_999999.db").exists()  # wiped at start
    files = list(served.multiproc_dir.glob("counter_*.db"))
    assert files, "no worker wrote its counters to PROMETHEUS_MULTIPROC_DIR"

    busiest = max(files, key=lambda f: f.stat().st_size)
    pid = int(busiest.stem.split("_")[1])
    os.kill(pid, signal.SIGTERM)  # one of the workers this test's server started
    deadline = time.monotonic() + TIMEOUT
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists(), "the worker did not stop"

    for _ in range(REQUESTS):
        assert fetch(f"{served.url}/login")[0] == 200
    values = samples(fetch(f"{served.url}/metrics")[1])
    assert values[key] == 2 * REQUESTS  # the dead worker's requests still count
    assert values[("callcollect_web_request_seconds_count", (("endpoint", "auth.login"),))] == (
        2 * REQUESTS
    )
    assert len(list(served.multiproc_dir.glob("counter_*.db"))) >= 2
    assert "Traceback" not in served.log.read_text()


# --- who may scrape (Flask test client: the client address can be chosen) -----------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ConsoleStore:
    return seed_console_store(tmp_path_factory.mktemp("metrics-access"))


def client_for(
    store: ConsoleStore, token_file: Path | None = None, *, proxy_hops: int = 0
) -> Iterator[FlaskClient]:
    settings = replace(
        store.settings,
        metrics=MetricsSettings(token_file=token_file),
        web=replace(store.settings.web, proxy_hops=proxy_hops),
    )
    app = create_app(settings, test_config={"TESTING": True})
    yield app.test_client()
    app.extensions["callcollect.store"].dispose()


@pytest.fixture
def open_client(store: ConsoleStore) -> Iterator[FlaskClient]:
    yield from client_for(store)


@pytest.fixture
def token_client(store: ConsoleStore, tmp_path: Path) -> Iterator[FlaskClient]:
    token = tmp_path / "metrics-token"
    token.write_text("correct-horse-metrics-token\n")
    yield from client_for(store, token)


@pytest.mark.parametrize(
    ("address", "status"),
    [
        ("127.0.0.1", 200),
        ("127.0.0.9", 200),
        ("::1", 200),
        ("192.0.2.10", 403),
        ("2001:db8::1", 403),
    ],
)
def test_without_a_token_only_loopback_may_scrape(
    open_client: FlaskClient, address: str, status: int
) -> None:
    response = open_client.get("/metrics", environ_base={"REMOTE_ADDR": address})
    assert response.status_code == status
    if status == 200:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("Bearer correct-horse-metrics-token", 200),
        ("Bearer wrong", 403),
        ("", 403),  # loopback alone is not enough once a token is set
        ("correct-horse-metrics-token", 403),
    ],
)
def test_with_a_token_everyone_must_send_it(
    token_client: FlaskClient, header: str, status: int
) -> None:
    headers = {"Authorization": header} if header else {}
    response = token_client.get(
        "/metrics", headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )
    assert response.status_code == status


# --- behind a reverse proxy (web.proxy_hops) ------------------------------------------------------

# What the recommended nginx sends for a client on the internet: the connection comes from
# loopback, X-Forwarded-For carries the client's address, X-Forwarded-Proto the scheme.
FROM_NGINX = {"REMOTE_ADDR": "127.0.0.1"}
NGINX_HEADERS = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


@pytest.mark.parametrize("forwarded", [NGINX_HEADERS, {}])
def test_behind_a_proxy_without_a_token_metrics_is_refused(
    store: ConsoleStore, forwarded: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING"):
        for client in client_for(store, proxy_hops=1):
            response = client.get("/metrics", headers=forwarded, environ_base=FROM_NGINX)
            assert response.status_code == 403
            assert "callcollect_" not in response.get_data(as_text=True)
    assert any(
        "web.proxy_hops" in r.getMessage() and "metrics.token_file" in r.getMessage()
        for r in caplog.records
    )


def test_today_a_proxied_request_looks_local_without_the_setting(store: ConsoleStore) -> None:
    """Why the setting exists: without it, nginx's loopback connection is let in."""
    for client in client_for(store):
        response = client.get("/metrics", headers=NGINX_HEADERS, environ_base=FROM_NGINX)
        assert response.status_code == 200


@pytest.mark.parametrize(
    ("header", "status"),
    [("Bearer correct-horse-metrics-token", 200), ("", 403), ("Bearer x", 403)],
)
def test_behind_a_proxy_the_token_is_served(
    store: ConsoleStore, tmp_path: Path, header: str, status: int
) -> None:
    token = tmp_path / "metrics-token"
    token.write_text("correct-horse-metrics-token\n")
    headers = {**NGINX_HEADERS, **({"Authorization": header} if header else {})}
    for client in client_for(store, token, proxy_hops=1):
        response = client.get("/metrics", headers=headers, environ_base=FROM_NGINX)
        assert response.status_code == status
        if status == 200:
            assert "callcollect_store_up 1.0" in response.get_data(as_text=True)


def test_forwarded_for_is_ignored_without_the_setting(store: ConsoleStore) -> None:
    """A remote client cannot claim to be local with its own X-Forwarded-For."""
    for client in client_for(store):
        response = client.get(
            "/metrics", headers={"X-Forwarded-For": "127.0.0.1"},
            environ_base={"REMOTE_ADDR": "192.0.2.10"},
        )  # fmt: skip
        assert response.status_code == 403
