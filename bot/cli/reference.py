"""The generated parts of the docs and the Slack manifest, from the code itself: the
configuration tables from the settings sections, the chat commands from their
declarations, the `aibot` subcommands from the CLI's parser.

The docs and the manifest call these through `cog` blocks; `cog --check` (a test)
fails when a declaration changed and its generated text was not regenerated:

    .venv/bin/cog -r .env.example docs/configuration.md docs/commands.md deploy/slack-manifest.yaml
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.app import composition
from bot.cli import build_parser
from bot.core.commands import CommandSet, CommandSpec, Group
from bot.core.feature import Feature, Platform
from bot.core.router import HELP
from bot.core.settings import Section, Settings


def sections(features: Sequence[type[Feature]] | None = None,
             platforms: Sequence[type[Platform]] | None = None) -> list[type[Section]]:
    """The core's settings, then each feature's and platform's section, in composition order."""
    units = [*(composition.features() if features is None else features),
             *(composition.platforms() if platforms is None else platforms)]
    found: list[type[Section]] = [Settings]
    for unit in units:
        if unit.settings_model is not None and unit.settings_model not in found:
            found.append(unit.settings_model)
    return found


def settings_tables(features: Sequence[type[Feature]] | None = None,
                    platforms: Sequence[type[Platform]] | None = None) -> str:
    """One Markdown table per settings section: variable, default, meaning."""
    out: list[str] = []
    for section in sections(features, platforms):
        out += [f"### {section.title or section.__name__}", "", "| variable | default | meaning |", "|---|---|---|"]
        for name, field in section.model_fields.items():
            out.append(f"| `{section.variable(name)}` | {_default(field.default)} | {field.description or ''} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _default(value: Any) -> str:
    if value is None or isinstance(value, SecretStr):
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`" if not isinstance(value, Path) else f"`{value.as_posix()}`"


def declared(features: Sequence[type[Feature]] | None = None) -> CommandSet:
    """Every chat command the composed bot declares, without composing it."""
    units = composition.features() if features is None else features
    specs: list[CommandSpec] = [HELP]
    groups: list[Group] = []
    for unit in units:
        specs += unit.command_specs()
        groups += unit.groups
    return CommandSet(tuple(specs), tuple(groups))


def command_table(commands: CommandSet | None = None) -> str:
    """The chat commands: usage, what they do, their options, who sees the answer."""
    commands = commands or declared()
    out = ["| command | what it does | options | the answer |", "|---|---|---|---|"]
    for entry in sorted(commands.top_level(), key=lambda e: e.name):
        specs = commands.subcommands(entry.name) if isinstance(entry, Group) else [entry]
        for spec in specs:
            options = "<br>".join(f"`{o.name}`{'' if o.required else ' (optional)'}: {o.description}"
                                  for o in spec.options if o.description) or "–"
            who = "only the asker" if spec.ephemeral else "the channel"
            admin = ", admins only" if spec.admin_only else ""
            out.append(f"| `{spec.usage_line}` | {spec.description} | {options} | {who}{admin} |")
    return "\n".join(out) + "\n"


def slack_commands(commands: CommandSet | None = None) -> str:
    """The manifest's `slash_commands` entries: every top-level command and group."""
    commands = commands or declared()
    out = []
    for entry in commands.top_level():
        hint = commands.usage(entry.name).removeprefix(f"/{entry.name}").strip()
        out += [f"    - command: /{entry.name}", f"      description: {_yaml(entry.description)}"]
        if hint:
            out.append(f"      usage_hint: {_yaml(hint)}")
        out.append("      should_escape: false")
    return "\n".join(out) + "\n"


def slack_assistant_view() -> str:
    """The manifest's `assistant_view`: its description and the default suggested prompts
    (SLACK_ASSISTANT_PROMPTS, which the bot also sets in every new panel thread)."""
    from adapters.slack.assistant import parse_prompts  # the Slack platform's own format

    slack = next(p for p in composition.platforms() if p.name == "slack")
    default = slack.settings_model.model_fields["assistant_prompts"].default
    out = ["    assistant_description: " + _yaml("Ask aibot anything; it summarizes the channel you are viewing, "
                                                 "searches your knowledge base and streams its answers."),
           "    suggested_prompts:"]
    for prompt in parse_prompts(default):
        out += [f"      - title: {_yaml(prompt['title'])}", f"        message: {_yaml(prompt['message'])}"]
    return "\n".join(out) + "\n"


def _yaml(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def cli_table() -> str:
    """Every `aibot` subcommand with its usage line and help, from the CLI's own parser."""
    parser = build_parser(composition.features(), composition.platforms())
    out = ["| command | what it does |", "|---|---|"]
    for usage, help_text in _subcommands(parser):
        out.append(f"| `{usage}` | {help_text} |")
    return "\n".join(out) + "\n"


def _subcommands(parser: argparse.ArgumentParser):
    """(usage, help) of every leaf subcommand, in the order the CLI adds them."""
    for action in parser._actions:  # argparse keeps its subparsers only here
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {a.dest: a.help for a in action._choices_actions}
        for name, sub in action.choices.items():
            nested = list(_subcommands(sub))
            if nested:
                yield from nested
            else:
                usage = " ".join(sub.format_usage().removeprefix("usage: ").replace(" [-h]", "").split())
                yield usage, helps.get(name) or ""


def env_example(features: Sequence[type[Feature]] | None = None,
                platforms: Sequence[type[Platform]] | None = None) -> str:
    """Every setting as a commented `.env` line with its default, grouped by section:
    `.env.example` is generated from this (uncomment what you change)."""
    out: list[str] = []
    for section in sections(features, platforms):
        out += ["", f"# ---- {section.title or section.__name__} " + "-" * max(3, 70 - len(section.title or section.__name__))]
        for name, field in section.model_fields.items():
            out.append("# " + _plain(field.description or ""))
            out.append(f"# {section.variable(name)}={_env_default(field.default)}")
    return "\n".join(out).lstrip("\n") + "\n"


def _plain(text: str) -> str:
    return " ".join(text.replace("`", "").split())


def _env_default(value: Any) -> str:
    if value is None or isinstance(value, SecretStr):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value.as_posix() if isinstance(value, Path) else str(value)
