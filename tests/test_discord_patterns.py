"""Digests end to end on Discord: `/digest on` through discord.py's CommandTree on the
fake gateway creates the schedule (UTC unless a zone is given: Discord does not tell a
user's time zone), and the scheduler posts one digest into the channel through the
adapter's channel opener, paging the channel's history backwards with `before`."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from patterns.batch.schedules import DigestStore
from tests.discord_env import connect, discord_bot, fake, settle  # noqa: F401 (fixtures)
from tests.fakes.discord_server import FakeDiscord
from tests.test_digest import Clock, scheduler
from tests.test_discord_commands import option

UTC = timezone.utc


def private_reply(fake: FakeDiscord, token: str) -> str:
    followup = fake.requests("POST", rf"/webhooks/{fake.APP_ID}/{token}$")[-1]
    assert followup.body["flags"] & 64  # ephemeral: only the asker sees it
    return followup.body["content"]


async def test_digest_on_is_utc_without_a_zone_and_the_given_zone_with_one(app, fake, discord_bot):
    i = await fake.send_command("digest", [option("action", "on"), option("time", "09:00")])
    await settle(app, fake)
    assert "09:00 UTC, every day" in private_reply(fake, i["token"])
    i = await fake.send_command("digest", [option("action", "on"), option("time", "18:30 Asia/Tokyo weekdays")])
    await settle(app, fake)
    assert "18:30 Asia/Tokyo, on weekdays" in private_reply(fake, i["token"])
    [sched] = await DigestStore(app.services.db).all()
    assert (sched.platform, sched.tenant, sched.channel, sched.spec.tz) == (
        "discord", FakeDiscord.GUILD_ID, FakeDiscord.CHANNEL_ID, "Asia/Tokyo")


async def test_scheduled_digest_posts_once_into_the_discord_channel_reading_every_history_page(app, fake, fake_llm, discord_bot):
    now = datetime.now(UTC)
    at = (now + timedelta(hours=1)).replace(second=0, microsecond=0)
    i = await fake.send_command("digest", [option("action", "on"), option("time", f"{at:%H:%M} UTC")])
    await settle(app, fake)
    assert f"{at:%H:%M} UTC" in private_reply(fake, i["token"])
    lines = [f"note {n}: the rollout of region {n} went fine" for n in range(130)]  # > one page of 100
    for n, line in enumerate(lines):
        author = fake.user(f"9000000000000000{n % 2}", name="bob" if n % 2 else "carol")
        fake._store(fake.message(line, author=author))  # already in the channel's history
    fake._store(fake.message("chatter elsewhere", channel=FakeDiscord.OTHER_CHANNEL_ID))
    before = len(fake.bot_messages(FakeDiscord.CHANNEL_ID))

    fake_llm.enqueue("Topics: the rollout. Decisions: keep going.")
    clock = Clock(at + timedelta(seconds=20))
    sched = scheduler(app, clock=clock)
    try:
        assert await sched.tick() == 1
        assert await sched.tick() == 0  # the same period again: nothing
    finally:
        await sched.stop()
    await settle(app, fake)

    posts = fake.bot_messages(FakeDiscord.CHANNEL_ID)[before:]
    assert len(posts) == 1
    assert posts[0]["content"].startswith("**Daily digest** (130 messages since")
    assert "keep going" in posts[0]["content"]
    pages = fake.requests("GET", rf"/channels/{FakeDiscord.CHANNEL_ID}/messages$")
    assert len(pages) >= 2 and any("before" in c.query for c in pages)  # discord.py paging backwards
    transcript = fake_llm.chat_requests[-1]["messages"][-1]["content"]
    assert lines[0] in transcript and lines[-1] in transcript and "elsewhere" not in transcript
