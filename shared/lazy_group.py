"""A click group whose commands are imported only when they are used.

`edge-agent run` is a long-lived process on a small appliance: importing every command module
to start it would load the simulators (psycopg), the test-source tooling and the rest into
memory it keeps for months. Each command is registered as ``"name": "module:attribute"`` and
imported on first use; ``--help`` on the group imports them all, to print their summaries.

A command whose module needs a package this installation lacks (the agent installed without
the ``simulators`` extra, say) still shows in ``--help`` and, when run, says which extra to
install instead of printing a traceback.
"""

from __future__ import annotations

import importlib
from typing import Any, NoReturn

import click

from shared.cli_errors import FriendlyGroup
from shared.errors import CallCollectError


class LazyGroup(FriendlyGroup):
    """``FriendlyGroup`` that imports a command's module when the command is looked up.

    ``install_hint`` completes "install it with ..." when a command's package is missing.
    """

    def __init__(
        self,
        *args: Any,
        lazy: dict[str, str] | None = None,
        install_hint: str = "pip install 'callcollect[dev]'",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})
        self.install_hint = install_hint

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.split(".")[0] in {"edge_agent", "datacenter", "shared"}:
                raise  # our own module missing is a bug, not an installation choice
            return self._not_installed(cmd_name, exc.name)
        command = getattr(module, attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command

    def _not_installed(self, cmd_name: str, package: str) -> click.Command:
        message = (
            f"`{cmd_name}` needs the Python package {package!r}, which this installation "
            f"lacks; install it with {self.install_hint}"
        )

        def refuse() -> NoReturn:
            raise CallCollectError(message)

        return click.Command(
            cmd_name,
            callback=refuse,
            help=message,
            short_help=f"(not installed: {package})",
            context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        )
