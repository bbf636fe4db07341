"""Adding a pattern or a platform is one folder and one name in the composition root's
lists: a tiny pattern (`tests/dummy/echo`) and a tiny platform (`tests/dummy/loopback`)
are composed by name, and everything the real ones get, they get too: settings from
the environment, commands declared once (router, /help, Discord's tree, the Slack
manifest, the docs), answerers in order, admin-only enforcement, HTTP routes,
background work, channels for unprompted posts, a CLI subcommand."""
from __future__ import annotations

import asyncio

import aiohttp
import discord
import pytest

from adapters.discord.commands import build_tree
from bot.app import PATTERNS, PLATFORMS, App, features, platforms
from bot.cli import main
from bot.cli.reference import command_table, declared, settings_tables, slack_commands
from bot.core.errors import ConfigError
from tests.dummy.echo import Echo
from tests.dummy.loopback import LoopbackAdapter

ECHO, LOOPBACK = "tests.dummy.echo", "tests.dummy.loopback"


def units():
    """The real lists with one more name each: echo before chat (chat takes every
    mention the others leave), loopback first."""
    return features(PATTERNS[:-1] + (ECHO,) + PATTERNS[-1:]), platforms((LOOPBACK,) + PLATFORMS)


@pytest.fixture
def plugged(monkeypatch):
    monkeypatch.setenv("ECHO_PREFIX", "»")
    monkeypatch.setenv("LOOPBACK_TOKEN", "not-a-real-token")
    return units()


async def test_a_new_pattern_and_platform_run_like_the_built_in_ones(settings, plugged, fake_llm):
    feats, plats = plugged
    app = await App.open(settings.model_copy(update={"http_port": 0}), features=feats, platforms=plats)
    async with app:
        [loop] = app.adapters()  # its token is set: it runs, and the console does not
        assert isinstance(loop, LoopbackAdapter)
        serving = asyncio.create_task(app.serve([loop]))
        await asyncio.wait_for(loop.ready.wait(), 10)

        # the platform got the declarations for its command UI, the router routes by them
        assert {"echo", "echo-reset", "summarize", "help"} <= {s.name for s in loop.commands.specs}
        assert await loop.say("/echo hello 2") == ["» hello » hello"]
        assert await loop.say("/echo") == ["Usage: `/echo <text> [times]`"]
        assert await loop.say("/echo hi twice") == ["`twice` is not a valid times for /echo; use /echo <text> [times]."]
        [help_text] = await loop.say("/help")
        assert "• `/echo <text> [times]`: Say it back" in help_text

        # answerers are asked in the listed order: echo's before chat's
        assert await loop.say("@bot parrot polly") == ["» polly"]
        fake_llm.enqueue("Plain chat answers the rest.")
        assert await loop.say("@bot what is new?") == ["Plain chat answers the rest."]

        # admin-only is enforced by the router, from the declaration
        assert await loop.say("/echo-reset") == ["Only workspace admins (or the bot's admins) can use /echo-reset."]
        assert await loop.say("/echo-reset", is_admin=True) == ["forgotten"]

        # its HTTP route is mounted, its background work started, its channels reachable
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{app.http.bound_port}/echo") as r:
                assert await r.json() == {"prefix": "»"}
        assert app.feature(Echo).events == ["start"]
        await app.services.channels.open("loopback", tenant="L1", channel="C1").post("a digest nobody asked for")
        assert loop.outbox[-1] == "a digest nobody asked for"

        await loop.stop()
        await asyncio.wait_for(serving, 10)
        assert app.feature(Echo).events == ["start", "stop"]


def test_the_declarations_feed_discord_slack_and_the_docs(plugged):
    feats, plats = plugged
    commands = declared(feats)
    client = discord.Client(intents=discord.Intents.none())
    tree = build_tree(client, commands, handle=None)
    echo = tree.get_command("echo")
    params = {p.name: (p.type, p.required) for p in echo.parameters}
    assert params == {"text": (discord.AppCommandOptionType.string, True),
                      "times": (discord.AppCommandOptionType.integer, False)}
    assert echo.description == "Say it back"
    assert tree.get_command("echo-reset").default_permissions.manage_guild  # admin-only: Manage Server
    assert tree.get_command("kb").get_command("search") is not None  # groups become Discord groups
    assert '- command: /echo\n      description: "Say it back"\n      usage_hint: "<text> [times]"' in slack_commands(commands)
    assert "| `/echo <text> [times]` | Say it back |" in command_table(commands)
    tables = settings_tables(feats, plats)
    assert "### Echo (the tests' dummy pattern)" in tables and "| `ECHO_PREFIX` | `echo:` |" in tables
    assert "| `LOOPBACK_TOKEN` | unset |" in tables


def test_a_new_pattern_adds_its_cli_subcommand(settings, plugged, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("AIBOT_DATA_DIR", str(settings.data_dir))
    assert main(["echo", "hello", "there"], units=plugged) == 0
    assert capsys.readouterr().out == "» hello there\n"


def test_a_bad_setting_of_a_new_unit_is_one_clear_line(settings, plugged, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LOOPBACK_TOKEN", "")  # blank is unset: fine
    monkeypatch.setenv("AIBOT_CONTEXT_TOKENS", "lots")
    assert main(["echo", "hi"], units=plugged) == 2
    err = capsys.readouterr().err
    assert err.startswith("aibot: invalid configuration: AIBOT_CONTEXT_TOKENS:") and "Traceback" not in err


def test_a_unit_that_is_not_there_is_named():
    with pytest.raises(ConfigError, match="there is no package patterns.nosuch"):
        features(("nosuch",))
    with pytest.raises(ConfigError, match="tests.dummy must export its Platform subclass as PLATFORM"):
        platforms(("tests.dummy",))


async def test_two_patterns_declaring_one_command_are_refused_at_start(settings):
    from bot.core.commands import command
    from bot.core.feature import Feature

    class Shadow(Feature):
        name = "shadow"

        @command("summarize", description="Another /summarize")
        async def summarize(self, ctx, msg) -> str:
            return "shadowed"

    with pytest.raises(ValueError, match="/summarize is declared twice"):
        await App.open(settings, features=features() + (Shadow,))
