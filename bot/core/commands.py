"""Chat commands, declared once.

A command is declared where it is handled, with a decorator on the handler: name,
description, who sees the answer, whether it is admin-only. Its options are the
handler's parameters after `(ctx, msg)`: typed (`str`, `int`, `float`, `bool`,
`Literal[...]` for a choice, `Attachment` for a file), required unless they have a
default, and described by `name: text` lines in the docstring:

    @command("ask", description="Answer from the knowledge base, with sources")
    async def ask(self, ctx, msg, question: str) -> ...:
        '''question: what you want to know'''

Commands with subcommands (`/kb add`, `/kb list`) belong to a `Group` and are named
"kb add", "kb list". The router, `/help`, Discord's command tree and the Slack
manifest check all read these declarations; on text platforms (Slack, the console)
the router parses the typed options out of the text with `parse`, while Discord hands
them over typed.
"""
from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bot.core.errors import UserError
from bot.core.messages import Attachment

OPTION_TYPES = (str, int, float, bool, Attachment)
MARK = "__aibot_declaration__"  # attribute a decorator leaves on a handler
MAX_DESCRIPTION = 100  # Discord's limit for a command's and an option's description


@dataclass(frozen=True)
class Option:
    """One typed option of a command."""

    name: str
    type: type = str  # one of OPTION_TYPES
    description: str = ""
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()

    @property
    def placeholder(self) -> str:
        inner = "|".join(self.choices) if self.choices else self.name
        if self.type is bool:
            return f"[--{self.name}]"
        return f"<{inner}>" if self.required else f"[{inner}]"


@dataclass(frozen=True)
class CommandSpec:
    """Everything about a command except its handler."""

    name: str  # "summarize", or "kb add" for a group's subcommand
    description: str
    options: tuple[Option, ...] = ()
    ephemeral: bool = False  # the answer is shown to the asker only, where the platform can
    admin_only: bool = False  # workspace admins only (Discord: Manage Server)
    usage: str = ""  # how /help shows it; derived from the options when empty
    missing: str = ""  # the reply when a required option is missing; a usage line when empty
    aliases: tuple[str, ...] = ()  # other words for a subcommand on text platforms (`/kb ls`)
    default: bool = False  # the group's subcommand when the text names none (`/kb` = `/kb list`)
    hidden: bool = False  # internal: not in /help, Discord's tree or the manifest; typed options only

    @property
    def group(self) -> str | None:
        return self.name.split(" ", 1)[0] if " " in self.name else None

    @property
    def word(self) -> str:
        """The last word of the name: the subcommand of a group."""
        return self.name.rsplit(" ", 1)[-1]

    @property
    def usage_line(self) -> str:
        if self.usage:
            return self.usage
        flags = [o for o in self.options if o.type is bool]
        rest = [o for o in self.options if o.type not in (Attachment, bool)]
        return " ".join([f"/{self.name}", *(o.placeholder for o in (*flags, *rest))])


@dataclass(frozen=True)
class Group:
    """A command with subcommands, e.g. `/kb`."""

    name: str
    description: str
    usage: str = ""  # how /help shows the whole group; derived from the subcommands when empty


@dataclass(frozen=True)
class Declaration:
    """What a decorator records on a handler; the router binds it."""

    kind: Literal["command", "answerer", "ingest"]
    spec: CommandSpec | None = None


@dataclass(frozen=True)
class CommandSet:
    """The declared commands of a bot, for /help, Discord's tree and the manifest check."""

    specs: tuple[CommandSpec, ...] = ()
    groups: tuple[Group, ...] = ()

    def visible(self) -> list[CommandSpec]:
        return [s for s in self.specs if not s.hidden]

    def top_level(self) -> list[CommandSpec | Group]:
        """Top-level commands and groups in declaration order (groups where their first
        subcommand is), hidden ones left out."""
        out: list[CommandSpec | Group] = []
        seen: set[str] = set()
        by_name = {g.name: g for g in self.groups}
        for s in self.visible():
            top = s.group or s.name
            if top in seen:
                continue
            seen.add(top)
            out.append(by_name.get(top, s) if s.group else s)
        return out

    def subcommands(self, group: str) -> list[CommandSpec]:
        return [s for s in self.visible() if s.group == group]

    def usage(self, name: str) -> str:
        """The usage line of a command or a group."""
        group = next((g for g in self.groups if g.name == name), None)
        if group is None:
            spec = next((s for s in self.specs if s.name == name), None)
            return spec.usage_line if spec else f"/{name}"
        if group.usage:
            return group.usage
        return f"/{name} " + " | ".join(s.usage_line.removeprefix(f"/{name} ") for s in self.subcommands(name))


# ----------------------------------------------------------------------------- declaring


def command(
    name: str,
    *,
    description: str,
    ephemeral: bool = False,
    admin_only: bool = False,
    usage: str = "",
    missing: str = "",
    aliases: Iterable[str] = (),
    default: bool = False,
    hidden: bool = False,
) -> Callable:
    """Declare the decorated handler as the command `name` (see the module docstring)."""

    def mark(fn: Callable) -> Callable:
        spec = declare(fn, name=name, description=description, ephemeral=ephemeral, admin_only=admin_only,
                       usage=usage, missing=missing, aliases=tuple(aliases), default=default, hidden=hidden)
        setattr(fn, MARK, Declaration("command", spec))
        return fn

    return mark


def answerer(fn: Callable) -> Callable:
    """Declare a way to answer a mention or DM: `(ctx, msg) -> reply`, or None when this
    is not the handler's kind of message (the next answerer is asked)."""
    setattr(fn, MARK, Declaration("answerer"))
    return fn


def ingest(fn: Callable) -> Callable:
    """Declare the handler of files meant for the knowledge base."""
    setattr(fn, MARK, Declaration("ingest"))
    return fn


def declarations(obj: Any) -> list[tuple[str, Declaration]]:
    """(attribute name, declaration) of every decorated handler of a class (or an
    instance's class), in definition order, base classes first."""
    cls = obj if isinstance(obj, type) else type(obj)
    out: dict[str, Declaration] = {}
    for klass in reversed(cls.__mro__):
        for attr, value in vars(klass).items():
            found = getattr(value, MARK, None)
            if isinstance(found, Declaration):
                out[attr] = found
    return list(out.items())


def declare(fn: Callable, *, name: str, description: str, **flags: Any) -> CommandSpec:
    """A CommandSpec from a handler: options from its signature and docstring."""
    name = " ".join(name.lower().split())
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}( [a-z][a-z0-9_-]{0,31})?", name):
        raise ValueError(f"command name {name!r}: lower-case words of letters, digits, - and _")
    spec = CommandSpec(name=name, description=description.strip(), options=options_of(fn), **flags)
    too_long = [t for t in (spec.description, *(o.description for o in spec.options)) if len(t) > MAX_DESCRIPTION]
    if not spec.description or too_long:
        raise ValueError(f"/{name}: descriptions are 1 to {MAX_DESCRIPTION} characters (Discord's limit)")
    return spec


def options_of(fn: Callable) -> tuple[Option, ...]:
    """The options of a handler `([self,] ctx, msg, **options)`."""
    params = list(inspect.signature(fn).parameters.values())
    if params and params[0].name == "self":
        params = params[1:]
    params = params[2:]  # ctx, msg
    hints = typing.get_type_hints(fn)
    _, docs = param_docs(fn)
    out = []
    for p in params:
        kind, choices, optional = _option_type(hints.get(p.name, str), p.name)
        has_default = p.default is not inspect.Parameter.empty
        out.append(Option(name=p.name, type=kind, description=docs.get(p.name, ""),
                          required=not (has_default or optional),
                          default=p.default if has_default else None, choices=choices))
    return tuple(out)


def _option_type(hint: Any, name: str) -> tuple[type, tuple[str, ...], bool]:
    args = typing.get_args(hint)
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"option {name!r}: one type, optionally `| None`")
        hint, optional = rest[0], True
        args = typing.get_args(hint)
    if typing.get_origin(hint) is Literal:
        if not all(isinstance(a, str) for a in args):
            raise TypeError(f"option {name!r}: choices must be strings")
        return str, tuple(args), optional
    if hint not in OPTION_TYPES:
        raise TypeError(f"option {name!r}: type must be one of str, int, float, bool, Attachment, Literal[...]")
    return hint, (), optional


def param_docs(fn: Callable) -> tuple[str, dict[str, str]]:
    """A docstring's description (the text before the parameter lines) and its
    `name: text` parameter lines (for command options and agent tools alike)."""
    doc = inspect.getdoc(fn) or ""
    names = set(inspect.signature(fn).parameters)
    desc, params = [], {}
    for line in doc.splitlines():
        head, sep, rest = line.partition(":")
        if sep and head.strip() in names:
            params[head.strip()] = rest.strip()
        elif not params:
            desc.append(line)
    return " ".join(" ".join(desc).split()), params


# ----------------------------------------------------------------------------- parsing


def parse(spec: CommandSpec, text: str, attachments: tuple[Attachment, ...] = ()) -> dict[str, Any]:
    """The options of `spec` from a command's text: bool options are leading `--name`
    flags, then one word per other option, the last text option takes the rest; files
    come from the message's attachments."""
    values: dict[str, Any] = {}
    rest = text.strip()
    flags = {o.name: o for o in spec.options if o.type is bool}
    while flags and rest.startswith("--"):  # `/ask --fresh why ...`: a bool option as a leading flag
        word, after = _first_word(rest)
        if word[2:].lower() not in flags:
            break
        values[word[2:].lower()] = True
        rest = after
    words = [o for o in spec.options if o.type not in (Attachment, bool)]
    for i, opt in enumerate(words):
        if i == len(words) - 1 and opt.type is str and not opt.choices:
            raw, rest = rest, ""
        else:
            raw, rest = _first_word(rest)
        values[opt.name] = _value(spec, opt, raw)
    for opt in spec.options:
        if opt.type is Attachment:
            values[opt.name] = _value(spec, opt, attachments[0] if attachments else None)
        elif opt.type is bool and opt.name not in values:
            values[opt.name] = opt.default
    return values


def typed(spec: CommandSpec, given: Mapping[str, Any]) -> dict[str, Any]:
    """The options of `spec` from typed values (a platform that has typed options)."""
    return {opt.name: _value(spec, opt, given.get(opt.name)) for opt in spec.options}


def _first_word(text: str) -> tuple[str, str]:
    parts = text.split(None, 1)
    if not parts:
        return "", ""
    return parts[0], parts[1] if len(parts) > 1 else ""


def _value(spec: CommandSpec, opt: Option, raw: Any) -> Any:
    """One option's value from what was given: its default when nothing was (a required
    one: the declared `missing` reply), else checked and converted to its type."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if opt.required:
            raise UserError(spec.missing or f"Usage: `{spec.usage_line}`")
        return opt.default
    if opt.type is Attachment:
        return raw
    if opt.choices:
        return _choice(spec, opt, str(raw))
    try:
        return _convert(opt.type, raw)
    except (ValueError, KeyError):
        raise UserError(f"`{str(raw)[:30]}` is not a valid {opt.name} for /{spec.name}; "
                        f"use {spec.usage_line}.") from None


def _choice(spec: CommandSpec, opt: Option, raw: str) -> str:
    word = raw.strip().lower()
    if word not in opt.choices:
        raise UserError(f"I don't know `/{spec.group or spec.name} {raw[:30]}`. Use {spec.usage_line}.")
    return word


_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def _convert(kind: type, raw: Any) -> Any:
    if kind is str:
        return str(raw).strip()
    if kind is bool:
        return raw if isinstance(raw, bool) else _BOOLS[str(raw).strip().lower()]
    return kind(raw)


def subcommand(specs: Iterable[CommandSpec], group: str, text: str) -> tuple[CommandSpec | None, str]:
    """Which subcommand of `group` the text names (or the default one), and the rest."""
    subs = [s for s in specs if s.group == group and not s.hidden]
    word, rest = _first_word(text)
    word = word.lower()
    for s in subs:
        if word and (word == s.word or word in s.aliases):
            return s, rest
    if not word:
        return next((s for s in subs if s.default), None), ""
    return None, text


__all__ = [
    "Attachment", "CommandSet", "CommandSpec", "Declaration", "Group", "Option", "answerer", "command",
    "declarations", "declare", "ingest", "options_of", "param_docs", "parse", "subcommand", "typed",
]
