"""Reading the rating's TOML files (dial plans, route maps): one place for the two failures."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from shared.errors import ConfigError


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed file; ``ConfigError`` names the file when it cannot be read or parsed."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), f"cannot be read ({exc.strerror})", "check the path") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"is not valid TOML ({exc})", "fix the syntax") from exc
