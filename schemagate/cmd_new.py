"""Placeholder: commands are registered here by the owner of this module."""

import click


def register(group: click.Group) -> None:
    """Add this module's commands to the `schemagate` group."""
