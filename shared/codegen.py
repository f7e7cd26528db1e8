"""Functions built at import time from generated source, for hot paths derived from a declaration.

A declaration (the ICDR's fields) drives code that runs once per record: a loop over the fields
there would cost several times the straight-line code it stands for. ``compile_function`` turns
generated source into that straight-line function; the source is kept on the function
(``__source__``) so a reader or a failing test can see exactly what runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def compile_function(name: str, source: str, namespace: Mapping[str, Any]) -> Callable[..., Any]:
    """Compile ``source`` (which defines ``name``) with ``namespace`` as its globals."""
    scope = dict(namespace)
    code = compile(source, f"<generated {name}>", "exec")
    exec(code, scope)  # noqa: S102 - our own generated source, never input
    function: Callable[..., Any] = scope[name]
    function.__source__ = source  # type: ignore[attr-defined]
    return function


def indent(lines: list[str], depth: int = 1) -> list[str]:
    return [("    " * depth + line) if line else line for line in lines]
