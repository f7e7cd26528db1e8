"""The LDAP / Active Directory source of one tenant's directory: a small TOML file.

Contract:

- ``load_ldap_config(path)`` reads ``[ldap]`` and ``[ldap.attributes]`` (docs/directory.md has
  an example); a wrong or missing key is a ``ConfigError`` naming the key and the fix.
- The bind is read-only: the importer only searches. The password is read from
  ``bind_password_file`` (never from the TOML, which is often world-readable).
- Attribute defaults are Active Directory's: ``displayName``, ``ipPhone`` then
  ``telephoneNumber``, ``mail``, ``department``, ``physicalDeliveryOfficeName``; the cost centre
  has no standard AD attribute, so it is empty unless ``cost_centre`` names one.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.errors import ConfigError

DEFAULT_FILTER = "(&(objectCategory=person)(objectClass=user))"
DEFAULT_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "person": ("displayName", "cn"),
    "account": ("sAMAccountName",),
    "extension": ("ipPhone", "telephoneNumber"),
    "email": ("mail",),
    "department": ("department",),
    "cost_centre": (),
    "site": ("physicalDeliveryOfficeName",),
}


@dataclass(frozen=True, slots=True)
class LdapConfig:
    url: str  # ldap://host[:port] or ldaps://host[:port]
    base_dn: str
    bind_dn: str
    bind_password: str
    search_filter: str = DEFAULT_FILTER
    start_tls: bool = False
    ca_file: str = ""  # CA bundle for ldaps:// or StartTLS; empty: the system's
    tls_verify: bool = True
    page_size: int = 500
    timeout_seconds: int = 10
    extension_digits: int = 0  # keep only the last N digits of the number; 0: all of it
    interval_minutes: int = 60  # `datacenter directory sync --watch` runs this often
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = tuple(DEFAULT_ATTRIBUTES.items())

    def names(self, field: str) -> tuple[str, ...]:
        return dict(self.attributes)[field]

    @property
    def secure(self) -> bool:
        return self.url.lower().startswith("ldaps://") or self.start_tls


def load_ldap_config(path: Path) -> LdapConfig:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError("ldap", f"cannot read {path}: {exc.strerror}", "check --source") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("ldap", f"{path} is not TOML: {exc}", "fix the file") from exc
    section = document.get("ldap")
    if not isinstance(section, dict):
        raise ConfigError("ldap", f"{path} has no [ldap] table", "add one (docs/directory.md)")
    return _config(section, path.parent)


def _config(section: dict[str, Any], base: Path) -> LdapConfig:
    url = _text(section, "url", required=True)
    if not url.lower().startswith(("ldap://", "ldaps://")):
        raise ConfigError("ldap.url", f"{url!r} is not an ldap:// or ldaps:// URL",
                          "write ldaps://dc1.example.com or ldap://host:389")  # fmt: skip
    password_file = _text(section, "bind_password_file", required=True)
    password_path = (base / password_file) if not Path(password_file).is_absolute() else None
    path = password_path or Path(password_file)
    try:
        password = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError("ldap.bind_password_file", f"cannot read {path}: {exc.strerror}",
                          "point it at a file holding the bind password") from exc  # fmt: skip
    return LdapConfig(
        url=url,
        base_dn=_text(section, "base_dn", required=True),
        bind_dn=_text(section, "bind_dn", required=True),
        bind_password=password,
        search_filter=_text(section, "filter") or DEFAULT_FILTER,
        start_tls=_flag(section, "start_tls", False),
        ca_file=_text(section, "ca_file"),
        tls_verify=_flag(section, "tls_verify", True),
        page_size=_number(section, "page_size", 500, 1, 5000),
        timeout_seconds=_number(section, "timeout_seconds", 10, 1, 600),
        extension_digits=_number(section, "extension_digits", 0, 0, 32),
        interval_minutes=_number(section, "interval_minutes", 60, 1, 7 * 24 * 60),
        attributes=_attributes(section.get("attributes", {})),
    )


def _attributes(table: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(table, dict):
        raise ConfigError("ldap.attributes", "is not a table", "write [ldap.attributes]")
    out = dict(DEFAULT_ATTRIBUTES)
    for field, value in table.items():
        if field not in DEFAULT_ATTRIBUTES:
            raise ConfigError(f"ldap.attributes.{field}", "is not a directory field",
                              f"use one of {', '.join(DEFAULT_ATTRIBUTES)}")  # fmt: skip
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"ldap.attributes.{field}", "is not a name or a list of names",
                              'write "department" or ["ipPhone", "telephoneNumber"]')  # fmt: skip
        out[field] = tuple(n for n in names if n)
    for field in ("person", "extension"):
        if not out[field]:
            raise ConfigError(f"ldap.attributes.{field}", "is empty", "name an attribute")
    return tuple(out.items())


def _text(section: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = section.get(key, "")
    if not isinstance(value, str):
        raise ConfigError(f"ldap.{key}", "is not a string", "quote the value")
    if required and not value.strip():
        raise ConfigError(f"ldap.{key}", "is missing", "set it (docs/directory.md)")
    return value.strip()


def _flag(section: dict[str, Any], key: str, default: bool) -> bool:
    value = section.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"ldap.{key}", "is not true or false", "write true or false")
    return value


def _number(section: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = section.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"ldap.{key}", f"is not a whole number from {low} to {high}",
                          f"write a number such as {default}")  # fmt: skip
    return value
