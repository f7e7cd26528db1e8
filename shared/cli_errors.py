"""A click group that turns expected failures into one sentence and a documented exit code.

Both commands (`edge-agent`, `datacenter`) use it, so an operator never sees a traceback for a
``CallCollectError``: a bad config, a refused key or a corrupt file prints what failed and how to
fix it, and exits with the error class's code (docs/operations.md lists them).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from shared.errors import CallCollectError


class FriendlyGroup(click.Group):
    """click.Group whose commands report ``CallCollectError`` as ``Error: ...`` on stderr."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CallCollectError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
