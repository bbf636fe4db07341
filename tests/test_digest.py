"""Daily digests: `/digest` commands, and the scheduler's exactly-once behaviour with a
controllable clock (no test sleeps on the wall clock)."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, time, timedelta, timezone

import pytest
from sqlalchemy import text

from bot.core import tokens
from bot.app import App
from bot.core.messages import HistoryItem
from patterns.batch import Batch
from patterns.batch.scheduler import DigestScheduler
from patterns.batch import times
from patterns.batch.schedules import DigestStore
from tests.harness import RecordingConversation

UTC = timezone.utc


def at(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def scheduler(app, **kw) -> DigestScheduler:
    """A digest scheduler on the composed bot (as the batch feature starts its own)."""
    return DigestScheduler(services=app.services, router=app.router, settings=app.feature(Batch).settings, **kw)


def channel(app, conv, platform: str = "test") -> None:
    app.services.channels.register(platform, lambda **kw: conv)


async def schedule(app, spec: str, *, now: datetime, tz_default: str | None = None) -> None:
    await DigestStore(app.services.db).put(
        platform="test", tenant="T1", channel="C1", spec=times.parse_spec(spec.split(), default_tz=tz_default),
        user="U1", now=now,
    )


async def runs(app) -> list[dict]:
    return await DigestStore(app.services.db).runs(platform="test", tenant="T1", channel="C1")


def chat(start: datetime, lines: list[str], every=timedelta(minutes=5)) -> list[HistoryItem]:
    return [HistoryItem(user=f"user{i % 3}", text=t, ts=start + i * every, id=f"h{i}") for i, t in enumerate(lines)]


# ----------------------------------------------------------------------------- commands


async def test_digest_on_status_off(bot):
    [on] = await bot.send("/digest on 09:00 Europe/Berlin weekdays", ts=at("2026-11-24T10:00"))
    assert "09:00 Europe/Berlin, on weekdays" in on and "Next one: Wed 25 Nov 09:00" in on
    [status] = await bot.send("/digest status", ts=at("2026-11-24T10:00"))
    assert "09:00 Europe/Berlin" in status and "none posted yet" in status
    [off] = await bot.send("/digest off")
    assert off == "Daily digest off for this channel."
    [status] = await bot.send("/digest status")
    assert status.startswith("No digest scheduled here")


async def test_digest_time_zone_defaults_to_the_platforms_then_utc(bot):
    [on] = await bot.send("/digest on 7:30pm", timezone="America/New_York")
    assert "19:30 America/New_York, every day" in on
    [on] = await bot.send("/digest on 08:00", channel="C2")
    assert "08:00 UTC, every day" in on


@pytest.mark.parametrize(
    "command, expected",
    [
        ("/digest on", "Tell me when"),
        ("/digest on 25:00", "`25:00` is not a time of day"),
        ("/digest on 9", "`9` is not a time of day"),
        ("/digest on 09:00 Mars/Olympus_Mons", "`Mars/Olympus_Mons` is neither a time zone"),
        ("/digest on 09:00 UTC ../../etc/passwd", "is neither a time zone"),
        ("/digest sometimes", "I don't know `/digest sometimes`"),
    ],
)
async def test_bad_digest_input_gets_one_clear_message_and_changes_nothing(bot, app, command, expected):
    [reply] = await bot.send(command)
    assert expected in reply
    assert await DigestStore(app.services.db).all() == []


async def test_digest_now_summarizes_since_the_last_digest(bot, fake_llm):
    await bot.send("alice: the release moves to Friday")
    await bot.send("bob: I'll update the changelog")
    fake_llm.enqueue("Topics: release. Decisions: Friday. Action items: bob: changelog.")
    [reply] = await bot.send("/digest now")
    assert reply.startswith("**Daily digest** (2 messages") and "bob: changelog" in reply
    assert "Action items" in fake_llm.chat_requests[-1]["messages"][0]["content"]


# ----------------------------------------------------------------------------- times


def test_dst_days_in_berlin_have_one_occurrence_at_the_right_instant():
    nine = times.Spec(time(9, 0), "Europe/Berlin")
    assert times.occurrence(datetime(2026, 3, 28).date(), nine) == at("2026-03-28T08:00")
    assert times.occurrence(datetime(2026, 3, 29).date(), nine) == at("2026-03-29T07:00")
    assert times.occurrence(datetime(2026, 10, 25).date(), nine) == at("2026-10-25T08:00")
    half_two = times.Spec(time(2, 30), "Europe/Berlin")
    # 02:30 does not exist on 29 March (clocks jump 02:00 -> 03:00): runs at 03:30 local
    assert times.occurrence(datetime(2026, 3, 29).date(), half_two) == at("2026-03-29T01:30")
    # 02:30 happens twice on 25 October: the first one
    assert times.occurrence(datetime(2026, 10, 25).date(), half_two) == at("2026-10-25T00:30")


# ----------------------------------------------------------------------------- scheduler


async def test_scheduled_digest_posts_once_through_the_handler_path_and_ledger(app, fake_llm):
    conv = RecordingConversation(history=chat(at("2026-11-23T10:00"), [
        "alice: should we ship on Friday?", "bob: yes, Friday", "carol: I write the release notes",
    ]))
    channel(app, conv)
    await schedule(app, "09:00 UTC", now=at("2026-11-23T09:30"))
    clock = Clock(at("2026-11-24T08:59"))
    sched = scheduler(app, clock=clock)
    try:
        assert await sched.tick() == 0 and conv.texts == []
        fake_llm.enqueue("Topics: shipping. Decisions: Friday. Action items: carol: release notes.")
        clock.now = at("2026-11-24T09:00:20")
        assert await sched.tick() == 1
        clock.now = at("2026-11-24T09:30")
        assert await sched.tick() == 0
    finally:
        await sched.stop()
    [post] = conv.texts
    assert post.startswith("**Daily digest** (3 messages since Mon 23 Nov 09:00, UTC)")
    assert "carol: release notes" in post
    transcript = fake_llm.chat_requests[-1]["messages"][-1]["content"]
    assert "ship on Friday" in transcript and "release notes" in transcript
    await app.services.ledger.flush()  # rows are written behind the answer
    async with app.services.db.session() as s:
        rows = (await s.execute(text("SELECT pattern, platform, channel FROM usage"))).all()
    assert rows and all(r == ("batch", "test", "C1") for r in rows)
    [run] = await runs(app)
    assert run["period"] == "2026-11-24" and run["status"] == "posted" and run["messages"] == 3


async def test_two_schedulers_on_one_database_post_once(settings, app, fake_llm):
    conv = RecordingConversation(history=chat(at("2026-11-24T06:00"), ["alice: hello", "bob: hi"]))
    channel(app, conv)
    await schedule(app, "09:00 UTC", now=at("2026-11-23T00:00"))
    async with await App.open(settings) as replica:
        channel(replica, conv)
        clock = Clock(at("2026-11-24T09:00:05"))
        a = scheduler(app, clock=clock)
        b = scheduler(replica, clock=clock)
        try:
            posted = await asyncio.gather(a.tick(), b.tick(), a.tick(), b.tick())
            assert sum(posted) == 1 and len(conv.texts) == 1
            assert [a.leader.is_leader, b.leader.is_leader].count(True) == 1
            # even if both ran without the leader lock, the unique (channel, period) key is the final guard
            await a.leader.release()
            await b.leader.release()
            clock.now = at("2026-11-25T09:00:05")
            posted = await asyncio.gather(a.run_due(), b.run_due())
            assert sum(posted) == 1 and len(conv.texts) == 2
        finally:
            await a.stop()
            await b.stop()


async def test_a_slack_process_and_a_discord_process_on_one_database_each_run_their_platforms_digests(
        settings, app, fake_llm):
    """Leadership is per platform: the process serving Slack cannot post Discord's digest,
    so it must not sit on it (the Discord process leads Discord's)."""
    slack_conv = RecordingConversation(history=chat(at("2026-11-24T06:00"), ["alice: slack news", "bob: ok"]))
    discord_conv = RecordingConversation(history=chat(at("2026-11-24T06:00"), ["carol: discord news", "dan: ok"]))
    store = DigestStore(app.services.db)
    for platform in ("slack", "discord"):
        await store.put(platform=platform, tenant="T1", channel="C1", spec=times.parse_spec(["09:00", "UTC"], default_tz=None),
                        user="U1", now=at("2026-11-23T00:00"))
    channel(app, slack_conv, "slack")
    async with await App.open(settings) as other:
        channel(other, discord_conv, "discord")
        clock = Clock(at("2026-11-24T09:00:05"))
        slack_side, discord_side = scheduler(app, clock=clock), scheduler(other, clock=clock)
        try:
            assert await slack_side.tick() == 1  # first to tick: it leads Slack, and only Slack
            assert await discord_side.tick() == 1
            assert await slack_side.tick() == 0 and await discord_side.tick() == 0
        finally:
            await slack_side.stop()
            await discord_side.stop()
    assert len(slack_conv.texts) == 1 and "slack news" in fake_llm.chat_requests[0]["messages"][-1]["content"]
    assert len(discord_conv.texts) == 1
    for platform in ("slack", "discord"):
        [run] = await store.runs(platform=platform, tenant="T1", channel="C1")
        assert run["status"] == "posted"


class BlockingConversation(RecordingConversation):
    """History reads wait until `release` is set (a digest stuck mid-run)."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.reading = asyncio.Event()
        self.release = asyncio.Event()

    async def history(self, **kw):
        self.reading.set()
        await self.release.wait()
        return await super().history(**kw)


async def test_restart_in_the_middle_of_a_digest_posts_it_once(settings, app, fake_llm):
    conv = BlockingConversation(history=chat(at("2026-11-24T06:00"), ["alice: deploy is green", "bob: merging now"]))
    channel(app, conv)
    await schedule(app, "09:00 UTC", now=at("2026-11-23T00:00"))
    clock = Clock(at("2026-11-24T09:00:05"))
    first = scheduler(app, clock=clock)
    task = asyncio.create_task(first.tick())
    await conv.reading.wait()
    task.cancel()  # the process dies mid-run ...
    await asyncio.gather(task, return_exceptions=True)
    await first.leader.release()  # ... and its database connection (with the leader lock) closes
    [run] = await runs(app)
    assert run["status"] == "running" and conv.texts == []

    conv.release.set()
    async with await App.open(settings) as restarted:
        channel(restarted, conv)
        clock.now = at("2026-11-24T09:03")
        second = scheduler(restarted, clock=clock)
        try:
            assert await second.tick() == 1
            assert await second.tick() == 0
        finally:
            await second.stop()
    assert len(conv.texts) == 1 and "2 messages" in conv.texts[0]
    [run] = await runs(app)
    assert run["status"] == "posted"


async def test_downtime_posts_within_the_grace_window_else_skips_and_logs(app, fake_llm, caplog):
    app.feature(Batch).settings.digest_grace = 3600
    items = chat(at("2026-11-23T12:00"), ["day one: budget approved"]) + chat(
        at("2026-11-24T12:00"), ["day two: hiring starts"]) + chat(at("2026-11-25T12:00"), ["day three: offsite booked"])
    conv = RecordingConversation(history=items)
    channel(app, conv)
    await schedule(app, "09:00 UTC", now=at("2026-11-23T00:00"))
    clock = Clock(at("2026-11-24T09:40"))  # started 40 minutes late: within the grace
    sched = scheduler(app, clock=clock)
    try:
        assert await sched.tick() == 1
        clock.now = at("2026-11-25T11:30")  # down from before 09:00 until 11:30: beyond the grace
        with caplog.at_level(logging.WARNING, logger="patterns.batch.scheduler"):
            assert await sched.tick() == 0
        assert "skipping the 2026-11-25 digest" in caplog.text and "AIBOT_DIGEST_GRACE" in caplog.text
        clock.now = at("2026-11-26T09:00")
        assert await sched.tick() == 1
    finally:
        await sched.stop()
    assert len(conv.texts) == 2
    assert "(1 message since Mon 23 Nov 09:00, UTC)" in conv.texts[0]
    assert "(2 messages since Tue 24 Nov 09:00" in conv.texts[1]  # the skipped day is not lost
    assert [r["status"] for r in await runs(app)] == ["posted", "skipped", "posted"]


@pytest.mark.parametrize("start, end, expected", [
    ("2026-03-27T12:00", "2026-03-30T12:00", ["2026-03-28T08:00", "2026-03-29T07:00", "2026-03-30T07:00"]),
    ("2026-10-23T12:00", "2026-10-26T12:00", ["2026-10-24T07:00", "2026-10-25T08:00", "2026-10-26T08:00"]),
])
async def test_dst_change_days_in_berlin_post_once_per_day_at_local_nine(app, fake_llm, start, end, expected):
    conv = RecordingConversation()
    channel(app, conv)
    await schedule(app, "09:00 Europe/Berlin", now=at(start))
    clock = Clock(at(start))
    sched = scheduler(app, clock=clock)
    posted_at = []
    try:
        while clock.now <= at(end):
            if await sched.tick():
                posted_at.append(clock.now)
            clock.now += timedelta(minutes=30)
    finally:
        await sched.stop()
    assert posted_at == [at(e) for e in expected]
    assert all(t.startswith("No activity in this channel since") for t in conv.texts)


async def test_quiet_channel_can_get_nothing(app, fake_llm):
    app.feature(Batch).settings.digest_quiet = "skip"
    conv = RecordingConversation()
    channel(app, conv)
    await schedule(app, "09:00 UTC", now=at("2026-11-23T00:00"))
    sched = scheduler(app, clock=Clock(at("2026-11-24T09:01")))
    try:
        assert await sched.tick() == 0
    finally:
        await sched.stop()
    assert conv.texts == [] and fake_llm.chat_requests == []
    [run] = await runs(app)
    assert run["status"] == "quiet"


async def test_a_channel_with_5000_messages_is_read_whole_and_reduced(app, fake_llm):
    start = at("2026-11-23T09:00")
    items = [
        HistoryItem(user=f"user{i % 40}", text=f"message {i}: status of task {i % 97} is {'done' if i % 2 else 'open'}",
                    ts=start + timedelta(seconds=15 * i), id=f"h{i}",
                    reply_count=(i % 500 == 7) * (i // 100), link=f"https://chat.example/C1/p{i}" if i % 500 == 7 else None)
        for i in range(5000)
    ]
    conv = RecordingConversation(history=items)
    channel(app, conv)
    await schedule(app, "09:00 UTC", now=at("2026-11-22T00:00"))
    sched = scheduler(app, clock=Clock(at("2026-11-24T09:00")))
    try:
        assert await sched.tick() == 1
    finally:
        await sched.stop()
    reqs = fake_llm.chat_requests
    maps = [r for r in reqs if "part 1 of" in r["messages"][0]["content"].lower() or "this is part" in r["messages"][0]["content"].lower()]
    assert len(maps) >= 5 and "merge them" in reqs[-1]["messages"][0]["content"].lower()
    sent = "\n".join(r["messages"][-1]["content"] for r in maps)
    assert "message 0:" in sent and "message 4999:" in sent
    for r in reqs:
        assert sum(tokens.count(m["content"]) for m in r["messages"]) <= app.services.settings.context_tokens
    [post] = conv.texts
    assert post.startswith("**Daily digest** (5,000 messages")
    assert "**Busiest threads**\n• https://chat.example/C1/p4507 (45 replies)" in post


@pytest.mark.slow
def test_digest_commands_on_the_console(env):
    import subprocess
    import sys

    lines = "alice: the launch is on Thursday\n/digest on 09:00 Europe/Berlin weekdays\n/digest status\n/digest on 9:99\n/digest now\n"
    out = subprocess.run([sys.executable, "-m", "bot.cli", "run"], input=lines.encode(), env=env,
                         capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode()
    assert "Daily digest on: 09:00 Europe/Berlin, on weekdays" in text
    assert "Daily digest 09:00 Europe/Berlin, on weekdays; none posted yet" in text
    assert "`9:99` is not a time of day" in text
    assert "**Daily digest** (1 message since" in text or "Daily digest (1 message since" in text
    assert "Traceback" not in out.stderr.decode()
