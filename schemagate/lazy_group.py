"""The click group of ``schemagate.cli``: a command's module is imported when the command is looked
up (all of them to list them), so a command starts without importing the others."""

from __future__ import annotations

from importlib import import_module
from typing import Any

import click


class LazyGroup(click.Group):
    """Registers a command's module when the command is looked up (all of them to list them)."""

    def __init__(self, *args: Any, modules: dict[str, str], **kwargs: Any) -> None:
        """``modules``: command name -> the ``schemagate`` module that registers it (``cli.COMMANDS``)."""
        super().__init__(*args, **kwargs)
        self.modules = modules
        self.registered: set[str] = set()

    def register(self, module: str) -> None:
        if module not in self.registered:
            self.registered.add(module)
            import_module(f"schemagate.{module}").register(self)

    def register_all(self) -> None:
        for module in dict.fromkeys(self.modules.values()):
            self.register(module)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = self.modules.get(cmd_name)
        if module is None:
            self.register_all()  # an unknown name: click suggests the close ones from all commands
        else:
            self.register(module)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.register_all()
        return super().list_commands(ctx)
