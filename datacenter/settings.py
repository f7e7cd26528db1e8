"""Data-centre settings: one TOML file, environment overrides, typed and frozen.

Contract:

- ``load_settings(path)`` reads the TOML file (``--config``, else ``$CALLCOLLECT_DC_CONFIG``, else
  none: every key has a default), applies ``CALLCOLLECT_DC_<SECTION>_<KEY>`` environment overrides
  (``store.url`` -> ``CALLCOLLECT_DC_STORE_URL``), validates every value and returns a frozen
  ``Settings``. A bad value raises ``ConfigError`` naming the key and the fix; an unknown key is an
  error too, so a typo never silently falls back to a default.
- Relative paths in the file are relative to the file's folder; in the environment, to the
  working directory.
- ``SETTINGS`` is the one declarative table (key, kind, default, help; the shared form of
  ``shared.settings_table``) the loader, the example config and docs/datacenter.md are checked
  against.
- ``load_secret_key(path)`` returns the web session secret, generating it (random, 0600) the first
  time: there is no default secret.

On disk under ``data_dir`` by default: ``callcollect.db`` (the SQLite store), ``landing/`` (one
chroot per agent account and one folder per tenant for quarantine and archive: docs/landing.md), ``secret_key`` and ``keys/``
(``envelope.key``, ``receipts.key``, ``datacentre-certificates.pem``: ``datacenter keys init``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.errors import ConfigError
from shared.settings_table import (
    EnvFlag,
    EnvInteger,
    EnvNumber,
    EnvPath,
    EnvText,
    Kind,
    Setting,
    by_key,
    check_range,
)

ENV_CONFIG = "CALLCOLLECT_DC_CONFIG"
ENV_PREFIX = "CALLCOLLECT_DC_"
DEFAULT_DATA_DIR = Path("/var/lib/callcollect")
DEFAULT_BIND = "127.0.0.1:8080"
DEFAULT_WORKERS = 2
MAX_PROXY_HOPS = 5
DEFAULT_POLL_SECONDS = 5.0
DEFAULT_CLAIM_TIMEOUT_SECONDS = 600.0
DEFAULT_JOB_CLAIM_TIMEOUT_SECONDS = 60.0
MIB = 1024 * 1024
DEFAULT_MAX_FILE_BYTES = 256 * MIB
DEFAULT_MAX_BATCH_RECORDS = 100_000  # the most an agent may put in one (spool.batch_max_records)
DEFAULT_MAX_BATCH_BYTES = 256 * MIB
SECRET_KEY_BYTES = 32
MIN_SECRET_KEY_CHARS = 32

SMTP_TLS_MODES = ("starttls", "ssl", "none")
KEYS_DIR = "keys"  # under data_dir: the default home of the data centre's keys
# Per-tenant folders under landing.root/<tenant_slug>/.
LANDING_FOLDERS = ("incoming", "archive", "quarantine", "receipts", "heartbeats", "recordings")
RECORDINGS_DIR = "recordings"  # under data_dir: the encrypted audio (datacenter.recordings)


# Every value may come from the environment (text), so every kind takes text too.
TEXT, PATH, WHOLE, NUMBER, FLAG = EnvText(), EnvPath(), EnvInteger(), EnvNumber(), EnvFlag()


def _setting(key: str, kind: Kind, default: str, help: str) -> Setting:
    """A row of the table: ``default`` as written in TOML ("" = computed from data_dir, see help);
    every row may be overridden from the environment (``Setting.env``)."""
    return Setting(key, kind, default, help, env_prefix=ENV_PREFIX)


SETTINGS: tuple[Setting, ...] = (
    _setting("data_dir", PATH, str(DEFAULT_DATA_DIR),
            "Folder for the SQLite store, the landing area and the secret key."),
    _setting("store.url", TEXT, "",
            "SQLAlchemy URL of the store; default sqlite:///<data_dir>/callcollect.db. "
            "PostgreSQL: postgresql+psycopg://USER@HOST/DB."),
    _setting("store.read_url", TEXT, "",
            "URL reports may read from (a streaming replica, e.g. both hosts with "
            "target_session_attrs=prefer-standby); default: store.url. Reads there may lag the "
            "primary by the replication delay: docs/scale.md."),
    _setting("landing.root", PATH, "",
            "Landing area (the SFTP chroots); default <data_dir>/landing. One chroot per agent "
            "account (incoming/, heartbeats/, receipts/) and one folder per tenant slug "
            "(quarantine/, archive/): docs/landing.md."),
    _setting("web.secret_key_file", PATH, "",
            "File holding the session secret; default <data_dir>/secret_key. Generated on first "
            "use if missing."),
    _setting("web.bind", TEXT, DEFAULT_BIND, "HOST:PORT gunicorn listens on."),
    _setting("web.workers", WHOLE, str(DEFAULT_WORKERS), "gunicorn worker processes (1-64)."),
    _setting("web.proxy_hops", WHOLE, "0",
            "Reverse proxies in front of the app that set X-Forwarded-For/-Proto (0-5); 0: "
            "clients connect directly and those headers are ignored. Above 0, /metrics "
            "requires metrics.token_file."),
    _setting("web.session_idle_minutes", WHOLE, "60",
            "A signed-in session unused this long ends (5-1440)."),
    _setting("web.session_lifetime_hours", WHOLE, "12",
            "Every session ends this long after sign-in, however busy (1-168)."),
    _setting("web.login_lock_after", WHOLE, "10",
            "Consecutive wrong passwords that lock an account until an administrator unlocks it "
            "(3-100)."),
    _setting("ingest.poll_seconds", NUMBER, str(DEFAULT_POLL_SECONDS),
            "How often `datacenter ingest --watch` scans the landing area (0.1-3600)."),
    _setting("ingest.claim_timeout_seconds", NUMBER, str(DEFAULT_CLAIM_TIMEOUT_SECONDS),
            "A claim on a landed file older than this is taken to be from a dead worker and "
            "may be taken over (60-86400)."),
    _setting("ingest.job_claim_timeout_seconds", NUMBER, str(DEFAULT_JOB_CLAIM_TIMEOUT_SECONDS),
            "A claim on a store job (a re-rate or rollup day) older than this is taken to be "
            "from a dead worker and may be taken over (1-86400). A running job holds its row "
            "locked, so it is never taken over while it runs, however long it takes."),
    _setting("ingest.accept_unprotected", FLAG, "false",
            "Also accept plain (unsigned, unencrypted) batch files, from agents not yet switched "
            "to delivery.protection = \"cms\". Only during a transition: with it, a stolen SFTP "
            "key can inject calls."),
    _setting("ingest.max_file_bytes", WHOLE, str(DEFAULT_MAX_FILE_BYTES),
            "A landed batch file larger than this is quarantined unread (1 MiB-4 GiB)."),
    _setting("ingest.max_batch_records", WHOLE, str(DEFAULT_MAX_BATCH_RECORDS),
            "A batch holding more records than this is quarantined (1-1000000)."),
    _setting("ingest.max_batch_bytes", WHOLE, str(DEFAULT_MAX_BATCH_BYTES),
            "A batch whose payload decompresses to more than this is quarantined; decompression "
            "stops there, so a gzip bomb costs no more memory (1 MiB-4 GiB)."),
    # The data centre's keys (datacenter/ingest/keys.py; `datacenter keys init` makes them).
    _setting("keys.envelope_key", PATH, "",
            "RSA private key that decrypts batch files; default <data_dir>/keys/envelope.key."),
    _setting("keys.receipts_key", PATH, "",
            "Ed25519 private key that signs receipts; default <data_dir>/keys/receipts.key."),
    _setting("keys.recordings_key", PATH, "",
            "AES-256 key that encrypts call recordings at rest; default "
            "<data_dir>/keys/recordings.key (made by `datacenter keys init`)."),
    _setting("recordings.root", PATH, "",
            "Folder of the encrypted call recordings; default <data_dir>/recordings."),
    _setting("keys.certificates", PATH, "",
            "The two public certificates agents install (delivery.datacentre_certificates); "
            "default <data_dir>/keys/datacentre-certificates.pem."),
    # Alarms, notifications and /metrics (datacenter/health/alarms.py, notify.py, web/metrics.py).
    _setting("smtp.host", TEXT, "",
            "SMTP server for alarm emails and digests; empty sends no email."),
    _setting("smtp.port", WHOLE, "25", "SMTP port (465 with smtp.tls = \"ssl\", 587 with starttls)."),
    _setting("smtp.tls", TEXT, "starttls",
            "\"starttls\" (upgrade the connection; refused if the server cannot), \"ssl\" "
            "(TLS from the first byte) or \"none\" (plain, for a relay on the same machine)."),
    _setting("smtp.ca_file", PATH, "",
            "PEM file of CA certificates to trust for the SMTP server; default the system's."),
    _setting("smtp.username", TEXT, "", "SMTP login; empty logs in as nobody."),
    _setting("smtp.password_file", PATH, "",
            "File holding the SMTP password (kept out of the config file)."),
    _setting("smtp.from", TEXT, "callcollect@localhost", "Sender address of alarm emails."),
    _setting("alarms.interval_seconds", NUMBER, "60",
            "How often `datacenter alarms run` assesses health and notifies (5-3600)."),
    _setting("alarms.renotify_minutes", WHOLE, "60",
            "An open, unacknowledged alarm is sent again this often (5-10080)."),
    _setting("alarms.webhook_url", TEXT, "",
            "URL that receives every alarm as a JSON POST (ticketing); empty sends none."),
    _setting("alarms.tenant_webhooks_private", FLAG, "false",
            "Let tenants' cost alarm webhooks reach loopback, private and link-local "
            "addresses (an on-premises receiver); off, such URLs are refused."),
    _setting("alarms.console_url", TEXT, "",
            "The console's address as technicians reach it, for links in emails, e.g. "
            "https://callcollect.example; empty leaves links out."),
    _setting("digest.time", TEXT, "07:00",
            "HH:MM at which each technician's daily digest is sent; empty sends none."),
    _setting("digest.timezone", TEXT, "UTC", "Time zone of digest.time, e.g. Europe/London."),
    _setting("metrics.token_file", PATH, "",
            "File holding a bearer token for /metrics; empty allows loopback clients only."),
    # Polling health (datacenter/health/model.py; docs/health.md gives the exact rules).
    _setting("health.heartbeat_late_intervals", NUMBER, "3",
            "Heartbeats are late (transport down) after this many of the agent's upload "
            "intervals, and never sooner than 2 minutes (1-100)."),
    _setting("health.agent_down_minutes", WHOLE, "30",
            "No heartbeat for this long (and at least twice the lateness limit) means agent "
            "down (1-10080)."),
    _setting("health.uplink_failures", WHOLE, "3",
            "Failed uplink sessions in a row, as a heartbeat reports them, that mean transport "
            "down (1-1000)."),
    _setting("health.transport_hold_minutes", WHOLE, "30",
            "Uplink failures and late heartbeats keep a site transport down this long after "
            "they are reported (1-1440)."),
    _setting("health.missing_batch_grace_minutes", WHOLE, "10",
            "A missing batch number counts once a later batch has landed this long ago "
            "(0-1440)."),
    _setting("health.source_down_minutes", WHOLE, "2",
            "A source failing this long while its agent is alive is source down (0-1440)."),
    _setting("health.clock_skew_seconds", NUMBER, "120",
            "Clock skew when the agent's clock is this far from the landing host's (1-86400)."),
    _setting("health.spool_filling_percent", NUMBER, "70",
            "Spool filling from this share of the spool's quota (1-100)."),
    _setting("health.minimum_agent_version", TEXT, "",
            "Agents older than this are version outdated; empty: this data centre's version."),
    _setting("health.business_hours", TEXT, "08:00-18:00",
            "Business hours (the tenant's time zone) in which a site should have calls, HH:MM-HH:MM."),
    _setting("health.business_days", TEXT, "mon,tue,wed,thu,fri",
            "Business days, comma-separated mon..sun."),
    _setting("health.silent_after_minutes", WHOLE, "60",
            "Minutes into business hours before a site with no calls can be silent (1-1440)."),
    _setting("health.silent_weeks", WHOLE, "4",
            "Previous same weekdays whose median call count is the usual volume (1-52)."),
    _setting("health.silent_min_usual_calls", WHOLE, "5",
            "Silent only where the same weekday usually has at least this many calls by now "
            "(1-1000000)."),
    _setting("health.heartbeat_retention_days", WHOLE, "30",
            "Heartbeats are kept this many days for the console's timeline (1-3650)."),
)  # fmt: skip
_BY_KEY = by_key(SETTINGS)


@dataclass(frozen=True, slots=True)
class StoreSettings:
    url: str
    read_url: str = ""  # reports' reads (a replica); "" = url

    @property
    def reports_url(self) -> str:
        return self.read_url or self.url


@dataclass(frozen=True, slots=True)
class LandingSettings:
    root: Path

    def tenant_dir(self, slug: str, folder: str) -> Path:
        """``<root>/<slug>/<folder>`` for one of ``LANDING_FOLDERS``."""
        if folder not in LANDING_FOLDERS:
            raise ValueError(f"unknown landing folder {folder!r}")
        return self.root / slug / folder


@dataclass(frozen=True, slots=True)
class WebSettings:
    secret_key_file: Path
    bind: str
    workers: int
    proxy_hops: int = 0  # reverse proxies trusted for X-Forwarded-For / -Proto
    session_idle_minutes: int = 60
    session_lifetime_hours: int = 12
    login_lock_after: int = 10


@dataclass(frozen=True, slots=True)
class IngestSettings:
    poll_seconds: float
    claim_timeout_seconds: float
    job_claim_timeout_seconds: float = DEFAULT_JOB_CLAIM_TIMEOUT_SECONDS
    accept_unprotected: bool = False  # plain CCB1 files too (a transition to cms only)
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES  # larger landed files: quarantined unread
    max_batch_records: int = DEFAULT_MAX_BATCH_RECORDS
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES  # decompressed payload


@dataclass(frozen=True, slots=True)
class KeysSettings:
    """Where the data centre's keys are (``datacenter.ingest.keys`` makes and loads them)."""

    envelope_key: Path
    receipts_key: Path
    certificates: Path  # the public bundle agents install
    recordings_key: Path = Path("recordings.key")  # AES-256: call recordings at rest


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str  # "" = no email
    port: int
    tls: str  # one of SMTP_TLS_MODES
    ca_file: Path | None
    username: str
    password_file: Path | None
    sender: str  # the `smtp.from` key


@dataclass(frozen=True, slots=True)
class AlarmSettings:
    interval_seconds: float
    renotify_minutes: int
    webhook_url: str  # "" = no webhook
    console_url: str  # "" = no links in emails
    digest_time: str  # "HH:MM", "" = no digest
    digest_timezone: str
    # Tenants' cost alarm webhooks may reach non-global addresses (datacenter/cost_alarms)
    tenant_webhooks_private: bool = False


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    token_file: Path | None  # None: loopback clients only


@dataclass(frozen=True, slots=True)
class HealthSettings:
    """The ``[health]`` thresholds; ``datacenter.health.model.policy_from_settings`` uses them."""

    heartbeat_late_intervals: float
    agent_down_minutes: int
    uplink_failures: int
    transport_hold_minutes: int
    missing_batch_grace_minutes: int
    source_down_minutes: int
    clock_skew_seconds: float
    spool_filling_percent: float
    minimum_agent_version: str  # "" = this data centre's version
    business_start: time
    business_end: time
    business_days: tuple[int, ...]  # Monday = 0
    silent_after_minutes: int
    silent_weeks: int
    silent_min_usual_calls: int
    heartbeat_retention_days: int


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    store: StoreSettings
    landing: LandingSettings
    web: WebSettings
    ingest: IngestSettings
    smtp: SmtpSettings
    alarms: AlarmSettings
    metrics: MetricsSettings
    health: HealthSettings
    keys: KeysSettings
    recordings_root: Path = Path(RECORDINGS_DIR)  # the ``recordings.root`` setting
    source: Path | None = None  # the TOML file read, if any


def load_settings(
    path: Path | str | None = None, *, env: Mapping[str, str] | None = None
) -> Settings:
    """Read, override from the environment, validate. ``env`` defaults to ``os.environ``."""
    environ = os.environ if env is None else env
    if path is None and environ.get(ENV_CONFIG):
        path = environ[ENV_CONFIG]
    source = Path(path) if path is not None else None
    raw = _read_toml(source) if source is not None else {}
    base = source.parent if source is not None else Path.cwd()
    values: dict[str, tuple[Any, Path]] = {key: (val, base) for key, val in _flatten(raw).items()}
    for setting in SETTINGS:
        if setting.env is not None and setting.env in environ:
            values[setting.key] = (environ[setting.env], Path.cwd())
    return _build(values, source)


def settings_for_data_dir(data_dir: Path) -> Settings:
    """Defaults rooted at ``data_dir`` (tests, demos, first-run)."""
    return _build({"data_dir": (str(data_dir), Path.cwd())}, None)


def load_secret_key(path: Path) -> str:
    """The session secret in ``path``; created (random, mode 0600) if the file does not exist.

    Several gunicorn workers start at once, and each may be the first to look. The secret is
    written whole to a private temporary file, synced, then published with ``link()``, which
    fails if the name exists: so every worker reads either nothing (and creates) or a whole
    secret, never a half-written file, and all agree on the one that was published first.
    """
    if path.exists():
        return _read_secret(path)
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise ConfigError(
            "web.secret_key_file", f"cannot create {path}: {exc.strerror}",
            "create the folder and make it writable by the service user, or point "
            "web.secret_key_file at a writable path",
        ) from exc  # fmt: skip
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:  # mkstemp makes it 0600
            fh.write(secrets.token_hex(SECRET_KEY_BYTES) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # another worker published first: use its
            os.link(temporary, path)
    finally:
        Path(temporary).unlink()
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            "web.secret_key_file", f"cannot read {path}: {exc}",
            "make the file readable by the service user, or delete it to generate a new secret "
            "(this logs everyone out)",
        ) from exc  # fmt: skip
    if len(text) < MIN_SECRET_KEY_CHARS:
        raise ConfigError(
            "web.secret_key_file",
            f"{path} holds a secret shorter than {MIN_SECRET_KEY_CHARS} characters",
            "delete the file to generate a new random secret (this logs everyone out)",
        )
    return text


# --- parsing ------------------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(
            "--config", f"{path} does not exist",
            f"create it (see docs/datacenter.md) or unset {ENV_CONFIG}",
        ) from exc  # fmt: skip
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {path}: {exc.strerror}",
                          "check the path and its permissions") from exc  # fmt: skip
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{path} is not valid TOML: {exc}",
                          "fix the syntax at the line shown") from exc  # fmt: skip


def _flatten(raw: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in raw.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and key not in _BY_KEY:
            out.update(_flatten(value, prefix=f"{key}."))
        elif key not in _BY_KEY:
            known = ", ".join(sorted(_BY_KEY))
            raise ConfigError(key, "is not a known setting", f"remove it; known keys: {known}")
        else:
            out[key] = value
    return out


def _build(values: Mapping[str, tuple[Any, Path]], source: Path | None) -> Settings:
    def get(key: str) -> Any:
        setting = _BY_KEY[key]
        value, base = values.get(key, (setting.default, Path.cwd()))
        return setting.kind.convert(key, value, base=base)

    data_dir: Path = get("data_dir")
    url: str = get("store.url") or f"sqlite:///{data_dir / 'callcollect.db'}"
    if "://" not in url:
        raise ConfigError("store.url", f"{url!r} is not a database URL",
                          "use sqlite:////path/to/file.db or postgresql+psycopg://USER@HOST/DB")  # fmt: skip
    read_url: str = get("store.read_url")
    if read_url and not read_url.startswith("postgresql+psycopg://"):
        raise ConfigError("store.read_url", f"{read_url!r} is not a PostgreSQL URL",
                          "point it at a replica, postgresql+psycopg://USER@/DB?host=A:5432&"
                          "host=B:5432&target_session_attrs=prefer-standby, or leave it out")  # fmt: skip
    landing: Path = get("landing.root") if values.get("landing.root") else data_dir / "landing"
    secret_file: Path = (
        get("web.secret_key_file") if values.get("web.secret_key_file") else data_dir / "secret_key"
    )
    workers: int = get("web.workers")
    check_range("web.workers", workers, 1, 64)
    proxy_hops: int = get("web.proxy_hops")
    check_range("web.proxy_hops", proxy_hops, 0, MAX_PROXY_HOPS)
    bind: str = get("web.bind")
    if not _valid_bind(bind):
        raise ConfigError("web.bind", f"{bind!r} is not HOST:PORT", "write e.g. 127.0.0.1:8080")
    idle: int = get("web.session_idle_minutes")
    check_range("web.session_idle_minutes", idle, 5, 1440)
    lifetime: int = get("web.session_lifetime_hours")
    check_range("web.session_lifetime_hours", lifetime, 1, 168)
    lock_after: int = get("web.login_lock_after")
    check_range("web.login_lock_after", lock_after, 3, 100)
    poll: float = get("ingest.poll_seconds")
    check_range("ingest.poll_seconds", poll, 0.1, 3600)
    claim: float = get("ingest.claim_timeout_seconds")
    check_range("ingest.claim_timeout_seconds", claim, 60, 86400)
    job_claim: float = get("ingest.job_claim_timeout_seconds")
    check_range("ingest.job_claim_timeout_seconds", job_claim, 1, 86400)
    max_file: int = get("ingest.max_file_bytes")
    check_range("ingest.max_file_bytes", max_file, MIB, 4096 * MIB)
    max_records: int = get("ingest.max_batch_records")
    check_range("ingest.max_batch_records", max_records, 1, 1_000_000)
    max_batch: int = get("ingest.max_batch_bytes")
    check_range("ingest.max_batch_bytes", max_batch, MIB, 4096 * MIB)
    return Settings(
        data_dir=data_dir,
        store=StoreSettings(url=url, read_url=read_url),
        landing=LandingSettings(root=landing),
        web=WebSettings(
            secret_key_file=secret_file,
            bind=bind,
            workers=workers,
            proxy_hops=proxy_hops,
            session_idle_minutes=idle,
            session_lifetime_hours=lifetime,
            login_lock_after=lock_after,
        ),
        ingest=IngestSettings(
            poll_seconds=poll,
            claim_timeout_seconds=claim,
            job_claim_timeout_seconds=job_claim,
            accept_unprotected=get("ingest.accept_unprotected"),
            max_file_bytes=max_file,
            max_batch_records=max_records,
            max_batch_bytes=max_batch,
        ),
        keys=_keys_section(values, get, data_dir),
        recordings_root=(
            get("recordings.root") if values.get("recordings.root") else data_dir / RECORDINGS_DIR
        ),
        source=source,
        **_alarm_sections(values, get),
        health=_health_section(get),
    )


def _alarm_sections(values: Mapping[str, tuple[Any, Path]], get: Any) -> dict[str, Any]:
    """The ``smtp``, ``alarms``/``digest`` and ``metrics`` sections, validated."""

    def optional_path(key: str) -> Path | None:
        return get(key) if values.get(key) and str(values[key][0]).strip() else None

    tls: str = get("smtp.tls")
    if tls not in SMTP_TLS_MODES:
        raise ConfigError("smtp.tls", f"{tls!r} is not a TLS mode",
                          'write "starttls", "ssl" or "none"')  # fmt: skip
    port: int = get("smtp.port")
    check_range("smtp.port", port, 1, 65535)
    interval: float = get("alarms.interval_seconds")
    check_range("alarms.interval_seconds", interval, 5, 3600)
    renotify: int = get("alarms.renotify_minutes")
    check_range("alarms.renotify_minutes", renotify, 5, 10080)
    for key in ("alarms.webhook_url", "alarms.console_url"):
        url: str = get(key)
        if url and not url.startswith(("http://", "https://")):
            raise ConfigError(key, f"{url!r} is not an http(s) URL",
                              "write e.g. https://tickets.example/hooks/callcollect")  # fmt: skip
    digest_time: str = get("digest.time")
    if digest_time and not _valid_clock_time(digest_time):
        raise ConfigError("digest.time", f"{digest_time!r} is not HH:MM",
                          'write a 24-hour time such as "07:00", or "" for no digest')  # fmt: skip
    zone: str = get("digest.timezone")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("digest.timezone", f"{zone!r} is not a time zone",
                          'write an IANA name such as "Europe/London"') from None  # fmt: skip
    smtp = SmtpSettings(
        host=get("smtp.host"), port=port, tls=tls, ca_file=optional_path("smtp.ca_file"),
        username=get("smtp.username"), password_file=optional_path("smtp.password_file"),
        sender=get("smtp.from"),
    )  # fmt: skip
    alarms = AlarmSettings(
        interval_seconds=interval, renotify_minutes=renotify,
        webhook_url=get("alarms.webhook_url"), console_url=get("alarms.console_url").rstrip("/"),
        digest_time=digest_time, digest_timezone=zone,
        tenant_webhooks_private=get("alarms.tenant_webhooks_private"),
    )  # fmt: skip
    return {
        "smtp": smtp,
        "alarms": alarms,
        "metrics": MetricsSettings(token_file=optional_path("metrics.token_file")),
    }


def _keys_section(values: Mapping[str, tuple[Any, Path]], get: Any, data_dir: Path) -> KeysSettings:
    """The ``keys`` section: each path as configured, else its file under ``<data_dir>/keys/``."""

    def path(key: str, default: str) -> Path:
        configured: Path = get(key) if values.get(key) else data_dir / KEYS_DIR / default
        return configured

    return KeysSettings(
        envelope_key=path("keys.envelope_key", "envelope.key"),
        receipts_key=path("keys.receipts_key", "receipts.key"),
        certificates=path("keys.certificates", "datacentre-certificates.pem"),
        recordings_key=path("keys.recordings_key", "recordings.key"),
    )


_HEALTH_RANGES = {
    "heartbeat_late_intervals": (1, 100), "agent_down_minutes": (1, 10080),
    "uplink_failures": (1, 1000), "transport_hold_minutes": (1, 1440),
    "missing_batch_grace_minutes": (0, 1440), "source_down_minutes": (0, 1440),
    "clock_skew_seconds": (1, 86400), "spool_filling_percent": (1, 100),
    "silent_after_minutes": (1, 1440), "silent_weeks": (1, 52),
    "silent_min_usual_calls": (1, 1_000_000), "heartbeat_retention_days": (1, 3650),
}  # fmt: skip
_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _health_section(get: Any) -> HealthSettings:
    """The ``health`` section, validated (the business hours and days parsed)."""
    numbers: dict[str, Any] = {}
    for name, (low, high) in _HEALTH_RANGES.items():
        numbers[name] = get(f"health.{name}")
        check_range(f"health.{name}", numbers[name], low, high)
    hours: str = get("health.business_hours")
    start, sep, end = hours.partition("-")
    if not (sep and _valid_clock_time(start.strip()) and _valid_clock_time(end.strip())):
        raise ConfigError("health.business_hours", f"{hours!r} is not HH:MM-HH:MM",
                          'write e.g. "08:00-18:00"')  # fmt: skip
    begin, finish = (time.fromisoformat(t.strip().zfill(5)) for t in (start, end))
    if finish <= begin:
        raise ConfigError("health.business_hours", f"{hours!r} ends before it starts",
                          'write the start first, e.g. "08:00-18:00"')  # fmt: skip
    days_text: str = get("health.business_days")
    days = [d.strip().lower() for d in days_text.split(",") if d.strip()]
    if not days or any(d not in _DAY_NAMES for d in days):
        raise ConfigError("health.business_days", f"{days_text!r} is not a list of days",
                          'write e.g. "mon,tue,wed,thu,fri"')  # fmt: skip
    return HealthSettings(
        **numbers,
        minimum_agent_version=get("health.minimum_agent_version"),
        business_start=begin,
        business_end=finish,
        business_days=tuple(sorted({_DAY_NAMES.index(d) for d in days})),
    )


def _valid_clock_time(text: str) -> bool:
    hours, sep, minutes = text.partition(":")
    return bool(
        sep and len(minutes) == 2 and hours.isdigit() and minutes.isdigit()
        and int(hours) < 24 and int(minutes) < 60
    )  # fmt: skip


def _valid_bind(bind: str) -> bool:
    host, sep, port = bind.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) < 65536)
