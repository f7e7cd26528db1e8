"""Data-centre settings: one TOML file, environment overrides, typed and frozen.

Contract:

- ``load_settings(path)`` reads the TOML file (``--config``, else ``$CALLCOLLECT_DC_CONFIG``, else
  none: every key has a default), applies ``CALLCOLLECT_DC_<SECTION>_<KEY>`` environment overrides
  (``store.url`` -> ``CALLCOLLECT_DC_STORE_URL``), validates every value and returns a frozen
  ``Settings``. A bad value raises ``ConfigError`` naming the key and the fix; an unknown key is an
  error too, so a typo never silently falls back to a default.
- Relative paths in the file are relative to the file's folder; in the environment, to the
  working directory.
- ``SETTINGS`` is the one declarative table (key, default, help) the loader, the example config
  and docs/datacenter.md are checked against.
- ``load_secret_key(path)`` returns the web session secret, generating it (random, 0600) the first
  time: there is no default secret.

On disk under ``data_dir`` by default: ``callcollect.db`` (the SQLite store), ``landing/`` (one
folder per tenant: ``incoming/ archive/ quarantine/ receipts/``) and ``secret_key``.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.errors import ConfigError

ENV_CONFIG = "CALLCOLLECT_DC_CONFIG"
ENV_PREFIX = "CALLCOLLECT_DC_"
DEFAULT_DATA_DIR = Path("/var/lib/callcollect")
DEFAULT_BIND = "127.0.0.1:8080"
DEFAULT_WORKERS = 2
DEFAULT_POLL_SECONDS = 5.0
DEFAULT_CLAIM_TIMEOUT_SECONDS = 600.0
SECRET_KEY_BYTES = 32
MIN_SECRET_KEY_CHARS = 32

# Per-tenant folders under landing.root/<tenant_slug>/.
LANDING_FOLDERS = ("incoming", "archive", "quarantine", "receipts")


@dataclass(frozen=True, slots=True)
class Setting:
    """One row of the settings table: the single source for defaults, validation and docs."""

    key: str  # "section.name", or "name" at top level
    kind: str  # "str", "path", "int", "float"
    default: str  # as written in TOML; "" means computed from data_dir (see help)
    help: str

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.key.replace(".", "_").upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("data_dir", "path", str(DEFAULT_DATA_DIR),
            "Folder for the SQLite store, the landing area and the secret key."),
    Setting("store.url", "str", "",
            "SQLAlchemy URL of the store; default sqlite:///<data_dir>/callcollect.db. "
            "PostgreSQL: postgresql+psycopg://USER@HOST/DB."),
    Setting("landing.root", "path", "",
            "Landing area (the SFTP chroots); default <data_dir>/landing. One folder per tenant "
            "slug with incoming/, archive/, quarantine/ and receipts/."),
    Setting("web.secret_key_file", "path", "",
            "File holding the session secret; default <data_dir>/secret_key. Generated on first "
            "use if missing."),
    Setting("web.bind", "str", DEFAULT_BIND, "HOST:PORT gunicorn listens on."),
    Setting("web.workers", "int", str(DEFAULT_WORKERS), "gunicorn worker processes (1-64)."),
    Setting("ingest.poll_seconds", "float", str(DEFAULT_POLL_SECONDS),
            "How often `datacenter ingest --watch` scans the landing area (0.1-3600)."),
    Setting("ingest.claim_timeout_seconds", "float", str(DEFAULT_CLAIM_TIMEOUT_SECONDS),
            "A claim on a landed file older than this is taken to be from a dead worker and "
            "may be taken over (60-86400)."),
)  # fmt: skip
_BY_KEY = {s.key: s for s in SETTINGS}


@dataclass(frozen=True, slots=True)
class StoreSettings:
    url: str


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


@dataclass(frozen=True, slots=True)
class IngestSettings:
    poll_seconds: float
    claim_timeout_seconds: float


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    store: StoreSettings
    landing: LandingSettings
    web: WebSettings
    ingest: IngestSettings
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
        if setting.env in environ:
            values[setting.key] = (environ[setting.env], Path.cwd())
    return _build(values, source)


def settings_for_data_dir(data_dir: Path) -> Settings:
    """Defaults rooted at ``data_dir`` (tests, demos, first-run)."""
    return _build({"data_dir": (str(data_dir), Path.cwd())}, None)


def load_secret_key(path: Path) -> str:
    """The session secret in ``path``; created (random, mode 0600) if the file does not exist.

    Creation uses O_EXCL, so several gunicorn workers starting at once agree on one secret.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    except OSError as exc:
        raise ConfigError(
            "web.secret_key_file", f"cannot create {path}: {exc.strerror}",
            "create the folder and make it writable by the service user, or point "
            "web.secret_key_file at a writable path",
        ) from exc  # fmt: skip
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_hex(SECRET_KEY_BYTES) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
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
        return _convert(setting, value, base)

    data_dir: Path = get("data_dir")
    url: str = get("store.url") or f"sqlite:///{data_dir / 'callcollect.db'}"
    if "://" not in url:
        raise ConfigError("store.url", f"{url!r} is not a database URL",
                          "use sqlite:////path/to/file.db or postgresql+psycopg://USER@HOST/DB")  # fmt: skip
    landing: Path = get("landing.root") if values.get("landing.root") else data_dir / "landing"
    secret_file: Path = (
        get("web.secret_key_file") if values.get("web.secret_key_file") else data_dir / "secret_key"
    )
    workers: int = get("web.workers")
    _check_range("web.workers", workers, 1, 64)
    bind: str = get("web.bind")
    if not _valid_bind(bind):
        raise ConfigError("web.bind", f"{bind!r} is not HOST:PORT", "write e.g. 127.0.0.1:8080")
    poll: float = get("ingest.poll_seconds")
    _check_range("ingest.poll_seconds", poll, 0.1, 3600)
    claim: float = get("ingest.claim_timeout_seconds")
    _check_range("ingest.claim_timeout_seconds", claim, 60, 86400)
    return Settings(
        data_dir=data_dir,
        store=StoreSettings(url=url),
        landing=LandingSettings(root=landing),
        web=WebSettings(secret_key_file=secret_file, bind=bind, workers=workers),
        ingest=IngestSettings(poll_seconds=poll, claim_timeout_seconds=claim),
        source=source,
    )


def _convert(setting: Setting, value: Any, base: Path) -> Any:
    key = setting.key
    match setting.kind:
        case "str":
            if not isinstance(value, str):
                raise ConfigError(
                    key, f"expected a string, got {value!r}", 'quote the value: "..."'
                )
            return value.strip()
        case "path":
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(key, f"expected a path, got {value!r}",
                                  'write a quoted path, e.g. "/var/lib/callcollect"')  # fmt: skip
            path = Path(value.strip()).expanduser()
            return path if path.is_absolute() else (base / path).resolve()
        case "int":
            try:
                if isinstance(value, bool | float):
                    raise ValueError
                return int(value)
            except ValueError:
                raise ConfigError(key, f"expected a whole number, got {value!r}",
                                  "write a number without quotes, e.g. 4") from None  # fmt: skip
        case "float":
            try:
                if isinstance(value, bool):
                    raise ValueError
                return float(value)
            except ValueError:
                raise ConfigError(key, f"expected a number, got {value!r}",
                                  "write a number without quotes, e.g. 5") from None  # fmt: skip
    raise AssertionError(f"no conversion for {setting.kind}")  # pragma: no cover - table is static


def _check_range(key: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(key, f"{value} is out of range", f"use a value from {low} to {high}")


def _valid_bind(bind: str) -> bool:
    host, sep, port = bind.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) < 65536)
