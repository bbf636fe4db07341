"""Many Slack workspaces through Bolt's OAuth flow against the fake Slack: each install
gets its own bot token, stored encrypted; each workspace's events are answered with its
own token; a forged or replayed state installs nothing; rotated tokens are refreshed."""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from sqlalchemy import text

from tests.slack_oauth_support import distributed  # noqa: F401 (fixture)
from tests.slack_support import fake_slack  # noqa: F401 (fixture)


async def rows(app) -> list:
    async with app.services.db.session() as s:
        return (await s.execute(text("SELECT team_id, secret FROM slack_installations ORDER BY team_id"))).all()


async def test_two_workspaces_install_and_each_is_answered_with_its_own_token(distributed, fake_llm):
    link, cookie = await distributed.start_install()
    url = urlparse(link)
    query = parse_qs(url.query)
    assert link.startswith(f"{distributed.fake.origin}/oauth/v2/authorize?")
    assert query["client_id"] == [distributed.fake.client_id] and "chat:write" in query["scope"][0].split(",")
    assert cookie.startswith("slack-app-oauth-state=")

    token_a = await distributed.install("T0AAA")
    token_b = await distributed.install("T0BBB")
    assert token_a != token_b
    stored = await rows(distributed.app)
    assert [r.team_id for r in stored] == ["T0AAA", "T0BBB"]
    assert all(token_a not in r.secret and token_b not in r.secret and "xoxb" not in r.secret for r in stored)

    fake_llm.enqueue("Answer for A.")
    await distributed.mention("T0AAA", "what is new?")
    fake_llm.enqueue("Answer for B.")
    await distributed.mention("T0BBB", "what is new?")
    fake = distributed.fake
    writes = [c for c in fake.calls if c.method.startswith("chat.") and c.ok]
    by_team = {c.team for c in writes}
    assert by_team == {"T0AAA", "T0BBB"}
    for c in writes:
        assert c.token == fake.token_of(c.team)
    answers = {m.text for m in fake.bot_messages()}
    assert {"Answer for A.", "Answer for B."} <= answers
    # users.info for names and roles went out with each workspace's own token too
    assert {c.team for c in fake.calls_to("users.info")} == {"T0AAA", "T0BBB"}


async def test_a_forged_or_replayed_state_installs_nothing(distributed):
    _, cookie = await distributed.start_install()
    status, page = await distributed.finish_install(distributed.fake.approve("T0EVIL"), "forged-state", cookie)
    assert status != 200 or "Thank you" not in page
    link, cookie = await distributed.start_install()
    state = parse_qs(urlparse(link).query)["state"][0]
    status, _ = await distributed.finish_install(distributed.fake.approve("T0AAA"), state, cookie)
    assert status == 200
    status, page = await distributed.finish_install(distributed.fake.approve("T0EVIL"), state, cookie)  # replayed
    assert status != 200
    assert [r.team_id for r in await rows(distributed.app)] == ["T0AAA"]


async def test_a_workspace_not_installed_gets_nothing_and_others_keep_working(distributed, fake_llm):
    await distributed.install("T0AAA")
    fake = distributed.fake
    before = len([c for c in fake.calls if c.method.startswith("chat.")])
    from tests.slack_support import load
    payload = load("app_mention", event_id="EvStranger", text="<@U0BOT9999> hello")
    payload["team_id"] = "T0STRANGER"
    await distributed.post(payload)
    assert len([c for c in fake.calls if c.method.startswith("chat.")]) == before
    fake_llm.enqueue("Still here.")
    await distributed.mention("T0AAA", "hello")
    assert fake.bot_messages()[-1].text == "Still here."


async def test_expiring_tokens_are_rotated_and_the_new_one_is_used_and_stored(distributed, fake_llm):
    fake = distributed.fake
    fake.rotation, fake.token_lifetime = True, 3600  # within the default 120 minutes: refreshed at once
    first = await distributed.install("T0ROT")
    fake_llm.enqueue("Rotated.")
    await distributed.mention("T0ROT", "hi")
    now = fake.token_of("T0ROT")
    assert now != first and now.startswith("xoxe.xoxb-")
    assert first not in fake.workspaces  # the old token no longer works
    assert any(c.method == "oauth.v2.access" for c in fake.calls)
    bot = await distributed.adapter.installations.async_find_bot(enterprise_id=None, team_id="T0ROT")
    assert bot.bot_token == now  # the rotated token was saved (encrypted) for the next event
    assert fake.bot_messages()[-1].text == "Rotated."


async def test_in_an_installed_workspace_the_bot_knows_its_own_earlier_answer_in_a_thread(distributed, fake_llm):
    """Each workspace has its own bot user: the thread's history read with that workspace's
    token shows the earlier answer as the bot's (the model gets it as its own turn), not
    as something a person said."""
    from tests.slack_support import load

    await distributed.install("T0AAA")
    fake = distributed.fake
    ws = fake.workspaces[fake.token_of("T0AAA")]
    assert ws.bot_user != "U0BOTUSER"  # not the single-workspace fixture's bot
    fake_llm.enqueue("Paris is the capital.")
    root = fake.next_ts()
    first = load("app_mention", event_id="EvA1", user="U061F7AUR", channel="C123ABC456",
                 text=f"<@{ws.bot_user}> capital of France?", ts=root)
    first["team_id"] = "T0AAA"
    await distributed.post(first)
    fake_llm.enqueue("About two million.")
    follow = load("app_mention", event_id="EvA2", user="U061F7AUR", channel="C123ABC456",
                  text=f"<@{ws.bot_user}> and its population?", ts=fake.next_ts(), thread_ts=root)
    follow["team_id"] = "T0AAA"
    await distributed.post(follow)
    turns = [(m["role"], m["content"]) for m in fake_llm.chat_requests[-1]["messages"] if m["role"] != "system"]
    assert ("assistant", "Paris is the capital.") in turns
    assert not any(role == "user" and "Paris is the capital." in str(content) for role, content in turns)


async def test_a_workspace_s_events_are_authorized_from_one_store_read_without_auth_test_each(distributed, fake_llm):
    """Bolt's stock authorizer read the installation row and called auth.test for every
    event; a busy workspace now costs one read per TOKEN_TTL and no auth.test at all."""
    fake, tokens = distributed.fake, distributed.adapter.tokens
    tokens.ttl = 3600.0  # however slow this machine is, the five mentions fall within one period
    await distributed.install("T0AAA")
    reads, checks = tokens.reads, len(fake.calls_to("auth.test"))
    for i in range(5):
        fake_llm.enqueue(f"Answer {i}.")
        await distributed.mention("T0AAA", f"question {i}?")
    assert {f"Answer {i}." for i in range(5)} <= {m.text for m in fake.bot_messages()}
    assert all(c.token == fake.token_of("T0AAA") for c in fake.calls if c.method.startswith("chat."))
    assert tokens.reads - reads == 1
    assert len(fake.calls_to("auth.test")) == checks


async def test_a_workspace_removed_while_its_token_is_being_read_is_not_remembered():
    """An uninstall deletes the rows and forgets the cached token; a read that started
    before the delete must not put the token back for the next events."""
    import asyncio
    from types import SimpleNamespace

    from slack_sdk.oauth.installation_store import Bot

    from adapters.slack.oauth import Tokens
    from adapters.slack.settings import SlackSettings

    release, reading = asyncio.Event(), asyncio.Event()
    rows = {"T0GONE": Bot(app_id="A1", enterprise_id=None, team_id="T0GONE", bot_token="xoxb-old", bot_id="B1",
                          bot_user_id="U1", installed_at=0.0)}

    async def find_bot(*, enterprise_id, team_id, is_enterprise_install=False):
        found = rows.get(team_id)
        reading.set()
        await release.wait()  # the read is slow: the uninstall happens meanwhile
        return found

    settings = SlackSettings.load(env_file=None, client_id="1.2", client_secret="s", signing_secret="x")
    tokens = Tokens(settings=settings, installations=SimpleNamespace(async_find_bot=find_bot), client=None)
    first = asyncio.create_task(tokens.bot(enterprise_id=None, team_id="T0GONE"))
    await reading.wait()
    del rows["T0GONE"]
    tokens.forget("T0GONE")  # app_uninstalled
    release.set()
    await first
    assert await tokens.bot(enterprise_id=None, team_id="T0GONE") is None  # read again: not installed
