"""Slack counts its rate limits per workspace and method, not per process: two bot
processes on one database (two `App`s, each with its own Slack adapter and Socket Mode
connection to the fake Slack) together stay within one workspace's rate, and one left
alone (the other stopped, or crashed and its heartbeat lapsed) gets the whole rate back.

The tier is scaled up (240 chat.update calls a minute, a burst of one second's worth) so
that a few seconds show the rate; the calls counted are the fake Slack's."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from adapters.slack.adapter import SlackAdapter
from bot.app import App
from bot.core import processes
from bot.core.peers import Peers
from tests.fakes.slack_server import TEAM
from tests.slack_support import *  # noqa: F401,F403
from tests.slack_support import SlackBot

TIER = 240.0  # chat.update calls a minute per workspace, in the bot's budget (4 a second)
BURST = 1.0  # seconds' worth of calls that may come at once
WINDOW = 4.0  # seconds of writing measured
GUARD = 60.0  # seconds before a hung wait fails (not a latency target)
WRITERS = 4  # answers editing at once in each process


def most(budgets: float = 1.0, *, holders: int = 1) -> float:
    """The most chat.update calls `budgets` workspace budgets allow in WINDOW seconds, held
    by `holders` processes: the burst and the rate, and each holder's first call at once."""
    return budgets * TIER / 60 * (BURST + WINDOW) + holders


@pytest.fixture
async def pair(settings, fake_slack, slack_settings):
    """Two bot processes' worth of bot on one database and one Slack app, with heartbeats
    every 2/3 s (AIBOT_JOURNAL_LEASE=2)."""
    settings = settings.model_copy(update=dict(journal_lease=2.0))
    bots, apps = [], []
    try:
        for index in range(2):
            app = await App.open(settings)
            apps.append(app)
            adapter = SlackAdapter(settings=slack_settings, tiers={"chat.update": TIER}, burst=BURST)
            await app.attach(adapter)
            await fake_slack.wait_for(lambda: len(fake_slack._ws) == index + 1)
            bots.append(SlackBot(app, adapter, fake_slack, connection=index))
        yield bots
    finally:
        for bot in bots:
            await bot.adapter.stop()
        for app in apps:
            await app.close()


async def answers(bot: SlackBot, channel: str) -> list:
    """WRITERS answer messages posted in the workspace (one channel each), to be edited."""
    out = []
    for i in range(WRITERS):
        conv = bot.adapter.conversation(tenant=TEAM, channel=f"{channel}{i}")
        out.append((conv, await conv.post(f"answer {i}")))
    return out


async def edit_for(messages: list, seconds: float) -> int:
    """Each answer edits its message as fast as the budget lets it for `seconds`; the
    number of edits made."""
    stop_at = time.monotonic() + seconds
    made = 0

    async def writer(conv, ts: str) -> None:
        nonlocal made
        while time.monotonic() < stop_at:
            made += 1
            await conv.edit(ts, f"version {made}")

    await asyncio.gather(*(writer(conv, ts) for conv, ts in messages))
    return made


def updates(fake, since: float) -> int:
    """chat.update calls the fake Slack received for the workspace in the WINDOW seconds
    from `since` (429s included)."""
    return sum(1 for c in fake.calls if c.method == "chat.update" and c.team == TEAM and since <= c.at <= since + WINDOW)


async def counted(bot: SlackBot, n: int) -> None:
    peers = bot.app.services.peers
    deadline = time.monotonic() + GUARD
    while peers.count("slack") != n:
        assert time.monotonic() < deadline, f"never counted {n} processes serving Slack"
        await asyncio.sleep(0.05)


async def test_two_processes_together_stay_within_one_workspaces_rate(pair, fake_slack):
    first, second = pair
    await counted(first, 2)
    await counted(second, 2)
    assert first.app.services.peers.share("slack") == second.app.services.peers.share("slack") == 0.5

    one, two = await answers(first, "C0ONE"), await answers(second, "C0TWO")
    since = time.monotonic()
    made = await asyncio.gather(edit_for(one, WINDOW), edit_for(two, WINDOW))
    total = updates(fake_slack, since)

    # one workspace's budget for both: each process spending its own would make about twice this
    assert total <= most(1, holders=2), (total, made)
    assert total > most(0.5, holders=2)  # and they did spend it (the test would pass vacuously otherwise)
    assert all(m >= sum(made) / 4 for m in made), made  # both processes wrote, in even parts
    assert fake_slack.rate_limited == 0


async def test_a_process_left_alone_gets_the_whole_rate_once_the_others_heartbeat_lapses(pair, fake_slack):
    first, second = pair
    await counted(first, 2)
    one = await answers(first, "C0ONE")
    await edit_for(one, 1.0)  # while two share the workspace

    await second.app.services.peers.stop()  # no more heartbeats, its row left behind: as after a crash
    await counted(first, 1)  # once its lease (2 s) ran out
    assert first.app.services.peers.share("slack") == 1.0

    since = time.monotonic()
    made = await edit_for(one, WINDOW)
    total = updates(fake_slack, since)
    assert total > most(0.5), (total, made)  # more than half a workspace's budget: the whole is its
    assert total <= most(1)
    assert fake_slack.rate_limited == 0


async def test_a_process_that_stops_hands_its_share_to_the_others_at_their_next_heartbeat(pair):
    first, second = pair
    await counted(first, 2)
    await second.adapter.stop()
    await second.app.close()  # leaves the registry
    await counted(first, 1)


async def test_the_registry_counts_live_processes_per_platform_and_skips_a_dead_neighbour(app):
    db = app.services.db
    slack_a, slack_b = Peers(db=db, owner="host-a:1:aaaa"), Peers(db=db, owner="host-b:2:bbbb")
    discord = Peers(db=db, owner="host-c:3:cccc")
    try:
        await slack_a.serve("slack")
        await slack_b.serve("slack")
        await discord.serve("discord")
        await slack_a.beat()
        assert slack_a.count("slack") == slack_b.count("slack") == 2
        assert slack_a.count("discord") == 1 and discord.count("slack") == 2  # shares are per platform
        assert discord.share("discord") == 1.0

        # a process that ran on this machine and whose pid is gone counts no more, lease or not
        machine = processes.machine()
        if machine:
            gone = subprocess.Popen([sys.executable, "-c", "pass"])
            gone.wait()
            dead = Peers(db=db, owner=f"{machine}:{gone.pid}:dddd")
            await dead.serve("slack")
            await dead.stop()
            await slack_a.beat()
            assert slack_a.count("slack") == 2

        await slack_b.leave()
        await slack_a.beat()
        assert slack_a.count("slack") == 1 and slack_a.share("slack") == 1.0
    finally:
        for peers in (slack_a, slack_b, discord):
            await peers.leave()
