"""The agent's configuration: a TOML file turned into validated, frozen settings.

Contract:

- ``load(path)`` returns ``AgentSettings`` or raises ``ConfigError`` naming the full key
  (``uplink.host``, ``sources[1].kind``) and the fix. Nothing else escapes: a file that does not
  exist, is not TOML, or holds a typo'd key is a ``ConfigError`` too.
- ``SETTINGS`` is the one table of every scalar setting (key, kind, default, help), in the
  shared form of ``shared.settings_table``. Defaults, validation, ``agent.example.toml`` and
  docs/configuration.md all follow it; a test checks the docs list every key.
- Unknown keys are errors (a typo must not silently fall back to a default). The exception is a
  ``[[sources]]`` table: ``id`` and ``kind`` are ours, every other key is an option for the
  driver of that kind, which validates it (``sources.<id>.<key>``).
- Relative paths are relative to the directory of the config file, so a config and its keys can
  move together.
- ``sources[N]`` counts the ``[[sources]]`` tables from 0, in file order.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from edge_agent.delivery.proxy import ProxySettings, parse_proxy_url
from edge_agent.delivery.schedule import UploadSchedule, parse_schedule
from shared import settings_table
from shared.errors import ConfigError
from shared.settings_table import (
    REQUIRED,
    Choice,
    FilePath,
    Flag,
    Integer,
    Kind,
    Listen,
    Number,
    OptionalPath,
    Setting,
    Text,
    TextList,
    TimeZone,
    by_key,
)

DEFAULT_CONFIG_PATH = Path("/etc/callcollect/agent.toml")
AGENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # what a batch file name allows
SOURCE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
SECTIONS = ("agent", "spool", "journal", "uplink", "delivery", "metrics", "capture")
PROTECTIONS = ("cms", "none")


# --- kinds of this table only (the rest are shared.settings_table's) --------------------------


@dataclass(frozen=True, slots=True)
class ProxyUrl(Kind):
    doc: str = "proxy URL or empty"

    def convert(self, key: str, value: Any, *, base: Path) -> Any:
        text = Text(allow_empty=True).convert(key, value, base=base)
        if not text:
            return None
        try:
            return parse_proxy_url(text)
        except ValueError as exc:
            raise ConfigError(
                key,
                f"not a proxy URL: {exc}",
                "write 'http://host:port' or 'socks5://host:port' (user:password@ before the "
                "host if the proxy needs them), or '' for a direct connection",
            ) from exc


@dataclass(frozen=True, slots=True)
class Schedule(Kind):
    doc: str = '`"continuous"`, `"every N minutes"` or a list of `"HH:MM"`'

    def convert(self, key: str, value: Any, *, base: Path) -> Any:
        try:
            return parse_schedule(value)
        except ValueError as exc:
            raise ConfigError(
                key,
                str(exc),
                'write "continuous", "every 15 minutes" or a list of local times such as '
                '["02:00", "13:30"]',
            ) from exc


# --- the table -------------------------------------------------------------------------------


_AGENT_ID = Text(
    pattern=AGENT_ID_RE,
    pattern_help="use letters, digits, '.', '_' or '-' (up to 64, starting with a letter or digit)",
)

SETTINGS: tuple[Setting, ...] = (
    Setting("agent.id", _AGENT_ID, REQUIRED,
            "This appliance's name at the data centre; it names every batch file."),
    Setting("agent.tenant", Text(), REQUIRED,
            "The customer (tenant) this appliance collects for, as the data centre knows it."),
    Setting("agent.timezone", TimeZone(), REQUIRED,
            "IANA time zone of the PBXs' clocks, used to turn local call times into UTC."),
    Setting("agent.state_dir", FilePath(), "/var/lib/callcollect",
            "Where the journal, spool, outbox and sent batches live."),
    Setting("spool.quota_mb", Integer(minimum=16, maximum=1024 * 1024), 1024,
            "Disk the spool may use. Warnings at 70 % and 90 %; at 100 % sources stop reading "
            "(the PBX buffers) until batches are delivered."),
    Setting("spool.min_free_mb", Integer(minimum=0, maximum=1024 * 1024), 256,
            "Free disk that must remain on the state directory's file system. The quota shrinks "
            "to fit: the same 70 % / 90 % alarms, and sources stop reading before a write can "
            "fail; they resume when room returns."),
    Setting("spool.min_free_percent", Number(minimum=0, maximum=50), 5.0,
            "The same as a share of that file system; the larger of the two applies."),
    Setting("spool.batch_max_records", Integer(minimum=1, maximum=100_000), 5000,
            "A batch is sealed as soon as this many records wait."),
    Setting("spool.batch_max_age_seconds", Integer(minimum=1, maximum=86_400), 60,
            "A batch is also sealed once its oldest record has waited this long."),
    Setting("journal.segment_mb", Integer(minimum=1, maximum=1024), 16,
            "Size at which a source's raw journal starts a new segment file."),
    Setting("journal.retention_days", Integer(minimum=0, maximum=3650), 7,
            "A journal segment is deleted once every unit in it is parsed and spooled AND its "
            "last write is older than this, so raw bytes can be re-parsed after a parser fix."),
    Setting("uplink.host", Text(), REQUIRED,
            "The data centre's SFTP landing host name or address."),
    Setting("uplink.port", Integer(minimum=1, maximum=65535), 22, "SSH port of the landing host."),
    Setting("uplink.username", Text(), REQUIRED,
            "The SFTP account the data centre created for this tenant."),
    Setting("uplink.private_key", FilePath(), REQUIRED,
            "This appliance's SSH private key (no passphrase); its public half is given to the "
            "data centre."),
    Setting("uplink.known_hosts", FilePath(), REQUIRED,
            "known_hosts file pinning the landing host's key. A changed key is refused, never "
            "trusted on first use."),
    Setting("uplink.remote_dir", Text(), "incoming",
            "Folder, relative to the landing folder, that batch files are uploaded into; "
            "\"/incoming\" in the agent's own landing account (docs/landing.md)."),
    Setting("uplink.interval_seconds", Integer(minimum=1, maximum=86_400), 60,
            "How often batches are sealed and uploaded."),
    Setting("uplink.connect_timeout_seconds", Number(minimum=0.1, maximum=600), 15.0,
            "Time allowed to connect, exchange keys and authenticate."),
    Setting("uplink.transfer_timeout_seconds", Number(minimum=0.1, maximum=3600), 120.0,
            "Time a single SFTP read or write may stall before the session is abandoned."),
    Setting("uplink.backoff_min_seconds", Number(minimum=0.01, maximum=3600), 5.0,
            "Wait after the first failed session; doubles (with jitter) on each further failure."),
    Setting("uplink.backoff_max_seconds", Number(minimum=0.01, maximum=86_400), 600.0,
            "Longest wait between failed sessions."),
    Setting("uplink.receipts_dir", Text(), "receipts",
            "Folder, relative to the landing folder, where the data centre leaves signed receipts "
            "for stored batches; the agent reads them and deletes them where it may; "
            "\"/receipts\" in the agent's own landing account."),
    Setting("uplink.schedule", Schedule(), "continuous",
            "When to upload: \"continuous\" (every interval), \"every N minutes\", or a list of "
            "\"HH:MM\" times in agent.timezone. Failed sessions are retried with back-off "
            "regardless."),
    Setting("uplink.proxy", ProxyUrl(), "",
            "The customer's proxy for the SFTP connection: 'http://[user:password@]host:port' "
            "(HTTP CONNECT) or 'socks5://...' ('socks5h://' lets the proxy resolve names); "
            "empty connects directly."),
    Setting("uplink.max_kbps", Integer(minimum=0, maximum=10_000_000), 0,
            "Upload bandwidth limit in kilobits per second (0 = unlimited), for slow site links."),
    Setting("delivery.protection", Choice(choices=PROTECTIONS), "cms",
            "\"cms\": batch files are signed with the agent's key and encrypted to the data "
            "centre's certificate (run `edge-agent enroll` first). \"none\": plain files, only "
            "while the data centre runs with ingest.accept_unprotected (a transition)."),
    Setting("delivery.datacentre_certificates", OptionalPath(), "",
            "PEM bundle published by the data centre: its envelope (RSA) certificate that "
            "batches are encrypted to and its receipts (Ed25519) certificate. Required for "
            "\"cms\"; receipts are verified against it whenever it is set."),
    Setting("delivery.retention_days", Integer(minimum=0, maximum=3650), 30,
            "Acknowledged batches (files and spool rows) are kept this long for "
            "`edge-agent resend`, then deleted. Unacknowledged batches are never deleted."),
    Setting("delivery.receipt_timeout_minutes", Integer(minimum=0, maximum=7 * 24 * 60), 120,
            "An uploaded batch with no receipt after this long is sent again (same name, same "
            "bytes; the data centre stores nothing twice): it was lost or quarantined in the "
            "landing area. 0 never re-sends by itself (`edge-agent resend` still does)."),
    Setting("metrics.listen", Listen(), "",
            "Address for the Prometheus /metrics endpoint, e.g. '127.0.0.1:9108'; empty is off. "
            "A non-loopback address requires metrics.token_file."),
    Setting("metrics.token_file", OptionalPath(), "",
            "File holding a bearer token; when set, /metrics answers only requests with "
            "'Authorization: Bearer TOKEN'. Required when metrics.listen is not a loopback address."),
)  # fmt: skip
SETTINGS_BY_KEY = by_key(SETTINGS)


# --- capture: call recording from a mirror port (edge_agent/capture/, docs/capture.md) ------
# A block of its own (kinds, settings rows, typed result) so it merges around other work on the
# settings table; SETTINGS below is the shared table plus these rows.


@dataclass(frozen=True, slots=True)
class PortRanges(Kind):
    doc: str = 'port ranges "LOW-HIGH[,LOW-HIGH]"'

    def convert(self, key: str, value: Any, *, base: Path) -> Any:
        text: str = Text().convert(key, value, base=base)
        ranges = []
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            high = high or low
            if not (low.isdigit() and high.isdigit() and 1 <= int(low) <= int(high) <= 65535):
                raise ConfigError(key, f"{part.strip()!r} is not a port range",
                                  'write e.g. "10000-20000" or "5060,5068"')  # fmt: skip
            ranges.append((int(low), int(high)))
        return tuple(ranges)


CAPTURE_RULE_MODES = ("all", "include", "exclude")
CAPTURE_SETTINGS: tuple[Setting, ...] = (
    Setting("capture.enabled", Flag(), False,
            "Record calls from the mirror (SPAN) port on capture.interface."),
    Setting("capture.interface", Text(allow_empty=True), "",
            "The network card wired to the switch mirror port; required when capture is enabled."),
    Setting("capture.rtp_ports", PortRanges(), "10000-20000",
            "UDP port ranges the PBX and gateways use for RTP media (the kernel filter passes only "
            "these and the SIP ports)."),
    Setting("capture.sip_ports", PortRanges(), "5060",
            "Ports of plain SIP (UDP and TCP) to read call signalling from; TLS cannot be read."),
    Setting("capture.jitter_window_ms", Integer(minimum=20, maximum=500), 200,
            "How long packets are held to put reordered ones back in sequence."),
    Setting("capture.idle_timeout_seconds", Integer(minimum=2, maximum=3600), 10,
            "Media with no visible signalling is a finished call after this long without "
            "packets (SIP calls end at BYE; unanswered ones after 300 s, answered after 120 s quiet)."),
    Setting("capture.promiscuous", Flag(), True,
            "Put capture.interface in promiscuous mode (a mirror port needs it)."),
    Setting("capture.ring_mb", Integer(minimum=1, maximum=1024), 64,
            "Size of the kernel packet ring; raise it if health reports capture drops."),
    Setting("capture.rules_mode", Choice(choices=CAPTURE_RULE_MODES), "all",
            "\"all\" records every call, \"include\" only calls matching a rule list, "
            "\"exclude\" every call except those."),
    Setting("capture.rule_extensions", TextList(), [], "Extensions the rule lists name."),
    Setting("capture.rule_external_numbers", TextList(), [],
            "External numbers the rule lists name."),
    Setting("capture.rule_trunks", TextList(), [],
            "Trunks the rule lists name (known once the recording is linked to its call record)."),
    Setting("capture.rule_account_codes", TextList(), [],
            "Account codes the rule lists name (known once linked to the call record)."),
    Setting("capture.record_internal", Flag(), True,
            "Record calls between two extensions."),
    Setting("capture.extension_digits", Integer(minimum=1, maximum=15), 5,
            "A number with at most this many digits is an extension, longer ones are external."),
    Setting("capture.devices", TextList(), [],
            "Phones without visible signalling (MiNET), as \"EXTENSION=IP\", to name their calls."),
    Setting("capture.pause_api", Listen(), "127.0.0.1:8765",
            "Loopback address of the compliance pause/resume API; empty is off."),
    Setting("capture.remote_dir", Text(), "recordings",
            "Folder in the landing area that recording batches are uploaded into."),
    Setting("capture.batch_max_mb", Integer(minimum=1, maximum=2048), 64,
            "A recording batch is sealed once its recordings reach this size."),
    Setting("capture.upload_share_percent", Integer(minimum=1, maximum=100), 25,
            "Share of uplink.max_kbps recordings may use, sent only after every call record "
            "batch; with no limit, recordings are sent unthrottled after the records."),
    Setting("capture.link_window_seconds", Integer(minimum=0, maximum=600), 5,
            "How far a recording's answer and end times may be from a call record's to link them."),
)  # fmt: skip
SETTINGS = SETTINGS + CAPTURE_SETTINGS
SETTINGS_BY_KEY = {s.key: s for s in SETTINGS}


@dataclass(frozen=True, slots=True)
class CaptureConfig:
    """The [capture] section, typed (edge_agent.capture.process.CaptureSettings is built from it)."""

    enabled: bool = False
    interface: str = ""
    rtp_ports: tuple[tuple[int, int], ...] = ((10000, 20000),)
    sip_ports: tuple[tuple[int, int], ...] = ((5060, 5060),)
    jitter_window_ms: int = 200
    idle_timeout_seconds: int = 10
    promiscuous: bool = True
    ring_mb: int = 64
    rules_mode: str = "all"
    rule_extensions: tuple[str, ...] = ()
    rule_external_numbers: tuple[str, ...] = ()
    rule_trunks: tuple[str, ...] = ()
    rule_account_codes: tuple[str, ...] = ()
    record_internal: bool = True
    extension_digits: int = 5
    devices: tuple[str, ...] = ()
    pause_api: str = "127.0.0.1:8765"
    remote_dir: str = "recordings"
    batch_max_mb: int = 64
    upload_share_percent: int = 25
    link_window_seconds: int = 5

    def device_map(self) -> dict[str, str]:
        """IP address -> extension, from the ``EXTENSION=IP`` entries."""
        return {ip.strip(): ext.strip() for ext, _, ip in (d.partition("=") for d in self.devices)}


def _capture(values: Mapping[str, Any]) -> CaptureConfig:
    capture = CaptureConfig(**_fields(values, "capture"))
    if capture.enabled and not capture.interface:
        raise ConfigError("capture.interface", "is required when capture.enabled is true",
                          "name the NIC wired to the mirror port, e.g. interface = \"eth1\"")  # fmt: skip
    if any("=" not in d for d in capture.devices):
        raise ConfigError("capture.devices", "an entry is not EXTENSION=IP",
                          'write e.g. ["2001=192.0.2.21"]')  # fmt: skip
    if capture.pause_api:
        host = capture.pause_api.rpartition(":")[0].strip("[]")
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ConfigError("capture.pause_api", f"{host!r} is not a loopback address",
                              "use 127.0.0.1:PORT (the API must not be reachable from the network)")  # fmt: skip
    return capture


# --- the typed result ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    id: str
    tenant: str
    timezone: ZoneInfo
    state_dir: Path


@dataclass(frozen=True, slots=True)
class SpoolSettings:
    quota_mb: int
    batch_max_records: int
    batch_max_age_seconds: int
    min_free_mb: int = 256
    min_free_percent: float = 5.0

    @property
    def min_free_bytes(self) -> int:
        return self.min_free_mb * 1024 * 1024

    @property
    def quota_bytes(self) -> int:
        return self.quota_mb * 1024 * 1024


@dataclass(frozen=True, slots=True)
class JournalSettings:
    segment_mb: int
    retention_days: int

    @property
    def segment_bytes(self) -> int:
        return self.segment_mb * 1024 * 1024


@dataclass(frozen=True, slots=True)
class UplinkSettings:
    host: str
    username: str
    private_key: Path
    known_hosts: Path
    port: int = 22
    remote_dir: str = "incoming"
    interval_seconds: int = 60
    connect_timeout_seconds: float = 15.0
    transfer_timeout_seconds: float = 120.0
    backoff_min_seconds: float = 5.0
    backoff_max_seconds: float = 600.0
    receipts_dir: str = "receipts"
    schedule: UploadSchedule = field(default_factory=UploadSchedule)
    proxy: ProxySettings | None = None
    max_kbps: int = 0


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    protection: str = "none"
    datacentre_certificates: Path | None = None
    retention_days: int = 30
    receipt_timeout_minutes: int = 120


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    listen: str
    token_file: Path | None = None


@dataclass(frozen=True, slots=True)
class SourceSettings:
    id: str
    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AgentSettings:
    agent: AgentIdentity
    spool: SpoolSettings
    journal: JournalSettings
    uplink: UplinkSettings
    metrics: MetricsSettings
    sources: tuple[SourceSettings, ...]
    path: Path | None = None  # the file it came from, for messages
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    capture: CaptureConfig = field(default_factory=CaptureConfig)  # the capture block above


# --- loading ---------------------------------------------------------------------------------


def load(path: Path) -> AgentSettings:
    """Read and validate a config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            str(path), "the config file does not exist", "pass -c with the right path"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read the config file: {exc}", "check it") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # the key is the file: name it, not "<file>"
        raise ConfigError(str(path), f"not valid TOML: {exc}", "fix the syntax there") from exc
    settings = from_mapping(raw, base=path.parent.resolve())
    return dataclasses.replace(settings, path=path)


def loads(text: str, *, base: Path) -> AgentSettings:
    """Validate config text; relative paths are taken from ``base``."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            "<file>", f"not valid TOML: {exc}", "fix the syntax at that line"
        ) from exc
    return from_mapping(raw, base=base)


def from_mapping(raw: Mapping[str, Any], *, base: Path) -> AgentSettings:
    for name in raw:
        if name not in (*SECTIONS, "sources"):
            raise ConfigError(
                name,
                "unknown section or key",
                f"use only [{'], ['.join(SECTIONS)}] and [[sources]] (a typo?)",
            )
    values: dict[str, Any] = {}
    for section in SECTIONS:
        values.update(_section(raw, section, base=base))
    uplink = UplinkSettings(**_fields(values, "uplink"))
    if uplink.backoff_max_seconds < uplink.backoff_min_seconds:
        raise ConfigError(
            "uplink.backoff_max_seconds",
            "is smaller than uplink.backoff_min_seconds",
            "make the maximum at least the minimum",
        )
    delivery = DeliverySettings(**_fields(values, "delivery"))
    if delivery.protection == "cms" and delivery.datacentre_certificates is None:
        raise ConfigError(
            "delivery.datacentre_certificates",
            'is required when delivery.protection is "cms"',
            "install the PEM bundle the data centre published and name it here",
        )
    metrics = MetricsSettings(**_fields(values, "metrics"))
    _check_metrics(metrics)
    return AgentSettings(
        delivery=delivery,
        agent=AgentIdentity(**_fields(values, "agent")),
        spool=SpoolSettings(**_fields(values, "spool")),
        journal=JournalSettings(**_fields(values, "journal")),
        uplink=uplink,
        metrics=metrics,
        sources=_sources(raw.get("sources", [])),
        capture=_capture(values),
    )


def _check_metrics(metrics: MetricsSettings) -> None:
    """/metrics is unauthenticated unless a token is set: that is only for loopback."""
    if not metrics.listen or metrics.token_file is not None:
        return
    host = metrics.listen.rpartition(":")[0].strip("[]")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ConfigError(
            "metrics.listen",
            f"{metrics.listen} is not a loopback address, and metrics.token_file is not set",
            "set metrics.token_file to a file holding a bearer token (scrapers then send "
            "'Authorization: Bearer TOKEN'), or listen on 127.0.0.1",
        )


def _section(raw: Mapping[str, Any], section: str, *, base: Path) -> dict[str, Any]:
    table = raw.get(section, {})
    if not isinstance(table, dict):
        raise ConfigError(section, "must be a table", f"write it as [{section}]")
    known = {s.name: s for s in SETTINGS if s.section == section}
    for name in table:
        if name not in known:
            raise ConfigError(
                f"{section}.{name}",
                "unknown key",
                f"check the spelling; keys of [{section}] are: {', '.join(sorted(known))}",
            )
    out: dict[str, Any] = {}
    for name, setting in known.items():
        if name in table:
            out[setting.key] = setting.kind.convert(setting.key, table[name], base=base)
        elif setting.required:
            raise ConfigError(setting.key, "is required", f"add `{name} = ...` under [{section}]")
        else:
            out[setting.key] = setting.kind.convert(setting.key, setting.default, base=base)
    return out


def _fields(values: Mapping[str, Any], section: str) -> dict[str, Any]:
    prefix = section + "."
    return {key[len(prefix) :]: value for key, value in values.items() if key.startswith(prefix)}


def _sources(raw: Any) -> tuple[SourceSettings, ...]:
    if not isinstance(raw, list):
        raise ConfigError("sources", "must be an array of tables", "write each as [[sources]]")
    seen: set[str] = set()
    out: list[SourceSettings] = []
    for index, table in enumerate(raw):
        where = f"sources[{index}]"
        if not isinstance(table, dict):
            raise ConfigError(where, "must be a table", "write each source as [[sources]]")
        for name in ("id", "kind"):
            if name not in table:
                raise ConfigError(f"{where}.{name}", "is required", f"add `{name} = ...`")
        source_id = Text(
            pattern=SOURCE_ID_RE,
            pattern_help="use lower-case letters, digits and '-' (up to 32), e.g. 'pbx-main'",
        ).convert(f"{where}.id", table["id"], base=Path())
        if source_id in seen:
            raise ConfigError(
                f"{where}.id", f"{source_id!r} is used by another source", "give each a unique id"
            )
        seen.add(source_id)
        kind = Text().convert(f"{where}.kind", table["kind"], base=Path())
        options = {k: v for k, v in table.items() if k not in ("id", "kind")}
        out.append(SourceSettings(id=source_id, kind=kind, options=options))
    return tuple(out)


# --- documentation ---------------------------------------------------------------------------


def reference_markdown() -> str:
    """The settings table of docs/configuration.md (a test keeps the page in step)."""
    return settings_table.reference_markdown(SETTINGS)
