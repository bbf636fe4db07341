"""Commands declared once: a handler's signature and docstring become typed options,
and the text a person types on Slack or the console is read by that declaration the
same way Discord's typed options are."""
from __future__ import annotations

from typing import Literal

import pytest

from bot.core.commands import Attachment, command, declare, declarations, parse, subcommand, typed
from bot.core.errors import UserError


async def remind(ctx, msg, when: Literal["today", "tomorrow"], times: int = 1, note: str = "",
                 file: Attachment | None = None):
    """Remind me later.

    when: the day to remind
    times: how many reminders
    note: what to say
    file: something to attach
    """


SPEC = declare(remind, name="remind", description="Remind me later", missing="Say when: `/remind today`.")


def test_options_come_from_the_signature_and_the_docstring():
    opts = {o.name: o for o in SPEC.options}
    assert [o.name for o in SPEC.options] == ["when", "times", "note", "file"]
    assert opts["when"].choices == ("today", "tomorrow") and opts["when"].required
    assert opts["times"].type is int and not opts["times"].required and opts["times"].default == 1
    assert opts["file"].type is Attachment and not opts["file"].required
    assert opts["note"].description == "what to say"
    assert SPEC.usage_line == "/remind <today|tomorrow> [times] [note]"


def test_text_is_read_one_word_per_option_and_the_last_takes_the_rest():
    assert parse(SPEC, "tomorrow 3 call the bank, then the dentist") == {
        "when": "tomorrow", "times": 3, "note": "call the bank, then the dentist", "file": None}
    assert parse(SPEC, "  TODAY  ") == {"when": "today", "times": 1, "note": "", "file": None}
    pdf = Attachment(name="a.pdf", ref="F1")
    assert parse(SPEC, "today", (pdf,))["file"] == pdf


@pytest.mark.parametrize(
    "text, reply",
    [
        ("", "Say when: `/remind today`."),  # the declared reply for a missing required option
        ("someday", "I don't know `/remind someday`. Use /remind <today|tomorrow> [times] [note]."),
        ("today often", "`often` is not a valid times for /remind; use /remind <today|tomorrow> [times] [note]."),
    ],
)
def test_bad_text_gets_one_clear_sentence(text, reply):
    with pytest.raises(UserError) as exc:
        parse(SPEC, text)
    assert exc.value.user_message == reply


def test_typed_options_are_checked_by_the_same_declaration():
    assert typed(SPEC, {"when": "today", "times": 2}) == {"when": "today", "times": 2, "note": "", "file": None}
    with pytest.raises(UserError, match="Say when"):
        typed(SPEC, {"times": 2})


class Notes:
    @command("notes add", description="Add a note")
    async def add(self, ctx, msg, text: str): ...

    @command("notes list", description="List the notes", default=True, aliases=("ls",), ephemeral=True)
    async def list(self, ctx, msg): ...


def test_a_group_picks_its_subcommand_from_the_first_word():
    specs = [d.spec for _, d in declarations(Notes)]
    assert [s.name for s in specs] == ["notes add", "notes list"]
    assert subcommand(specs, "notes", "add buy milk")[0].name == "notes add"
    assert subcommand(specs, "notes", "add buy milk")[1] == "buy milk"
    assert subcommand(specs, "notes", "ls")[0].name == "notes list"
    assert subcommand(specs, "notes", "")[0].name == "notes list"  # the default one
    assert subcommand(specs, "notes", "frobnicate")[0] is None


def test_a_declaration_discord_would_refuse_is_refused_when_written():
    async def h(ctx, msg, when: dict): ...

    with pytest.raises(TypeError, match="type must be one of"):
        declare(h, name="h", description="x")
    with pytest.raises(ValueError, match="1 to 100 characters"):
        declare(remind, name="remind", description="x" * 101)
    with pytest.raises(ValueError, match="lower-case words"):
        declare(remind, name="Remind Me Now", description="x")


async def test_groups_unknown_subcommands_and_aliases_through_the_router(bot):
    [reply] = await bot.send("/kb frobnicate")
    assert reply == "I don't know `/kb frobnicate`. Use /kb add [text] | list | search <query> | remove <document>."
    [empty] = await bot.send("/kb ls")
    assert empty.startswith("The knowledge base is empty") and bot.last.messages[0].ephemeral
    [hidden] = await bot.send("/digest-run")  # internal commands are never reachable by text
    assert hidden.startswith("I don't know the command /digest-run")
