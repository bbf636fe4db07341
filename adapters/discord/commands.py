"""The bot's application commands, built for discord.py's CommandTree from the core's
command declarations (`bot.core.commands`): names, descriptions, typed options with
their choices and whether they are required, groups with their subcommands, and the
Manage Server default permission for admin-only commands.

Each command only hands the interaction and its typed options to `handle`, which
defers at once and routes it; no logic of the commands lives here.
"""
from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Optional

import discord
from discord import app_commands

from bot.core.commands import MAX_DESCRIPTION, Attachment, CommandSet, CommandSpec, Option

Handle = Callable[[discord.Interaction, str, dict[str, Any]], Awaitable[None]]

_TYPES: dict[type, Any] = {str: str, int: int, float: float, bool: bool, Attachment: discord.Attachment}


def build_tree(client: discord.Client, commands: CommandSet, handle: Handle) -> app_commands.CommandTree:
    tree = app_commands.CommandTree(client)
    for entry in commands.top_level():
        if isinstance(entry, CommandSpec):
            tree.add_command(_command(entry, handle))
            continue
        subs = commands.subcommands(entry.name)
        # Discord takes default permissions on top-level commands only: a group whose
        # subcommands are all admin-only is Manage Server by default as a whole
        admin = discord.Permissions(manage_guild=True) if subs and all(s.admin_only for s in subs) else None
        group = app_commands.Group(name=entry.name, description=_short(entry.description), default_permissions=admin)
        for spec in subs:
            group.add_command(_command(spec, handle, name=spec.word))
        tree.add_command(group)
    return tree


def _command(spec: CommandSpec, handle: Handle, *, name: str | None = None) -> app_commands.Command:
    async def callback(interaction: discord.Interaction, **options: Any) -> None:
        await handle(interaction, spec.name, options)

    # discord.py reads a command's options from its callback's signature: give the
    # generic callback the declared one
    params = [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction)]
    params += [_parameter(o) for o in sorted(spec.options, key=lambda o: not o.required)]
    callback.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    described = {o.name: _short(o.description) for o in spec.options if o.description}
    if described:
        callback = app_commands.describe(**described)(callback)
    command = app_commands.Command(name=name or spec.name, description=_short(spec.description), callback=callback)
    if spec.admin_only:
        command.default_permissions = discord.Permissions(manage_guild=True)
    return command


def _parameter(option: Option) -> inspect.Parameter:
    annotation: Any = Literal[option.choices] if option.choices else _TYPES[option.type]
    if option.required:
        return inspect.Parameter(option.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation)
    return inspect.Parameter(option.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Optional[annotation],
                             default=None)


def _short(text: str) -> str:
    text = " ".join(text.split()) or "…"
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"
