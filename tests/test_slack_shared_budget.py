"""Slack counts its rate limits per workspace and method, not per process: two bot
processes on one database (two `App`s, each with its own Slack adapter and Socket Mode
connection to the fake Slack) writing to one workspace together stay within its rate,
and one left writing there alone (the other idle there, stopped, or crashed and its
heartbeat lapsed) gets the whole rate back.

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
from bot.core.metrics import METRICS
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


async def until(predicate) -> None:
    deadline = time.monotonic() + GUARD
    while not predicate():
        assert time.monotonic() < deadline, "the process registry never showed it"
        await asyncio.sleep(0.05)


def share(bot: SlackBot) -> float:
    """The part of the workspace's Slack limits `bot`'s process may spend now."""
    return bot.app.services.peers.share("slack", TEAM)


async def test_two_processes_together_stay_within_one_workspaces_rate(pair, fake_slack):
    first, second = pair
    assert share(first) == share(second) == 1.0  # neither has written there yet
    one, two = await answers(first, "C0ONE"), await answers(second, "C0TWO")
    await until(lambda: share(first) == share(second) == 0.5)  # each has seen the other write there

    since = time.monotonic()
    made = await asyncio.gather(edit_for(one, WINDOW), edit_for(two, WINDOW))
    total = updates(fake_slack, since)

    # one workspace's budget for both: each process spending its own would make about twice this
    assert total <= most(1, holders=2), (total, made)
    assert total > most(0.5, holders=2)  # and they did spend it (the test would pass vacuously otherwise)
    assert all(m >= sum(made) / 4 for m in made), made  # both processes wrote, in even parts
    assert fake_slack.rate_limited == 0
    # what an operator sees: two processes, and writes waiting for the workspace's budget
    assert METRICS.registry.get_sample_value("aibot_processes", {"platform": "slack"}) == 2
    assert METRICS.registry.get_sample_value("aibot_platform_budget_wait_seconds_total",
                                             {"platform": "slack", "method": "chat.update"}) > 0


async def test_a_process_left_alone_gets_the_whole_rate_once_the_others_heartbeat_lapses(pair, fake_slack):
    first, second = pair
    one, two = await answers(first, "C0ONE"), await answers(second, "C0TWO")
    await until(lambda: share(first) == 0.5)

    await second.app.services.peers.stop()  # no more heartbeats, its row left behind: as after a crash
    await until(lambda: first.app.services.peers.count("slack") == 1)  # once its lease (2 s) ran out
    assert share(first) == 1.0

    since = time.monotonic()
    made = await edit_for(one, WINDOW)
    total = updates(fake_slack, since)
    assert total > most(0.5), (total, made)  # more than half a workspace's budget: the whole is its
    assert total <= most(1)
    assert fake_slack.rate_limited == 0


async def test_a_process_writing_alone_in_a_workspace_gets_its_whole_rate_beside_an_idle_one(pair, fake_slack):
    first, second = pair
    one, two = await answers(first, "C0ONE"), await answers(second, "C0TWO")
    await until(lambda: share(first) == share(second) == 0.5)

    # the second process stays up but writes nothing more there: after a lease (2 s) it no
    # longer claims a share of that workspace
    await until(lambda: share(first) == 1.0)
    assert first.app.services.peers.count("slack") == 2

    since = time.monotonic()
    made = await edit_for(one, WINDOW)
    total = updates(fake_slack, since)
    assert total > most(0.5), (total, made)
    assert total <= most(1)

    # and once both write there again, they split the workspace again
    both = asyncio.gather(edit_for(one, GUARD), edit_for(two, GUARD))
    try:
        await until(lambda: share(first) == share(second) == 0.5)
    finally:
        both.cancel()
        await asyncio.gather(both, return_exceptions=True)


async def test_a_process_that_stops_hands_its_share_to_the_others_at_their_next_heartbeat(pair):
    first, second = pair
    await until(lambda: first.app.services.peers.count("slack") == 2)
    await second.adapter.stop()
    await second.app.close()  # leaves the registry
    await until(lambda: first.app.services.peers.count("slack") == 1)


async def test_the_registry_shares_a_workspace_between_the_processes_writing_there(app):
    db = app.services.db
    writing = {"a": ["T1", "T2"], "b": ["T1"], "c": ["T1"]}
    a, b = Peers(db=db, owner="host-a:1:aaaa"), Peers(db=db, owner="host-b:2:bbbb")
    c = Peers(db=db, owner="host-c:3:cccc")
    try:
        await a.serve("slack", active=lambda within: writing["a"])
        await b.serve("slack", active=lambda within: writing["b"])
        await c.serve("discord", active=lambda within: writing["c"])
        await a.beat()
        assert a.count("slack") == b.count("slack") == 2 and a.count("discord") == 1  # per platform
        assert a.share("slack", "T1") == b.share("slack", "T1") == 0.5  # both write to T1
        assert a.share("slack", "T2") == 1.0  # only a writes to T2 (b would take half of it if it began to)
        assert b.share("slack", "T2") == 0.5
        assert c.share("discord", "T1") == 1.0  # Discord's T1 is not Slack's: c writes there alone

        writing["b"] = []  # b goes quiet in T1
        await b.beat()
        await a.beat()
        assert a.share("slack", "T1") == 1.0 and a.count("slack") == 2

        # a process that ran on this machine and whose pid is gone counts no more, lease or not
        machine = processes.machine()
        if machine:
            gone = subprocess.Popen([sys.executable, "-c", "pass"])
            gone.wait()
            dead = Peers(db=db, owner=f"{machine}:{gone.pid}:dddd")
            await dead.serve("slack", active=lambda within: ["T1"])
            await dead.stop()
            await a.beat()
            assert a.share("slack", "T1") == 1.0 and a.count("slack") == 2

        await b.leave()
        await a.beat()
        assert a.count("slack") == 1
    finally:
        for peers in (a, b, c):
            await peers.leave()


async def test_a_burst_is_split_between_all_the_processes_serving_slack_even_where_one_writes_alone():
    from adapters.slack.pacing import Budget

    async def at_once(budget: Budget) -> int:
        """Calls granted without waiting, one after another (the rest of a rush waits)."""
        granted = 0
        while await budget.take("chat.update", max_wait=0.0, bulk=False):
            granted += 1
        return granted

    # 60 calls a minute, a burst of 10 s' worth: alone, 1 + 10 calls go at once
    assert await at_once(Budget(tiers={"chat.update": 60.0}, per_channel={}, burst=10.0)) == 11
    # the whole rate (no other process writes to this workspace yet) but one of two
    # processes serving Slack: half the burst, since the other may be starting a rush too
    half = Budget(tiers={"chat.update": 60.0}, per_channel={}, burst=10.0, share=lambda: 1.0,
                  burst_share=lambda: 0.5)
    assert await at_once(half) == 6
    # sharing the rate too changes nothing in the burst's calls
    both = Budget(tiers={"chat.update": 60.0}, per_channel={}, burst=10.0, share=lambda: 0.5,
                  burst_share=lambda: 0.5)
    assert await at_once(both) == 6
