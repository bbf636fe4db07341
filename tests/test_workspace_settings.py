"""Per-workspace and per-channel settings changed from chat (`/aibot settings|channel|audit`):
they take effect at the next message, are recorded in the audit log, and only admins
may change or read them."""
from __future__ import annotations

import json

from tests.discord_env import discord_bot, fake, settle  # noqa: F401 (fixtures)
from tests.slack_support import *  # noqa: F401,F403

PERSONA = "You are Ada, the support team's assistant. Answer in one sentence."


def system_of(request: dict) -> str:
    return request["messages"][0]["content"]


async def test_persona_language_and_model_come_from_the_workspace_at_once(bot, fake_llm):
    fake_llm.enqueue("Hello from the default persona.")
    await bot.send("@aibot hi")
    assert system_of(fake_llm.chat_requests[-1]).startswith("You are aibot")

    [done] = await bot.send(f"/aibot settings set persona {PERSONA}")
    assert done.startswith("`persona` for this workspace is now")
    await bot.send("/aibot settings set language French")
    await bot.send("/aibot settings set chat_model gpt-4o")
    fake_llm.enqueue("Bonjour.")
    await bot.send("@aibot hi")
    request = fake_llm.chat_requests[-1]
    assert system_of(request).startswith(PERSONA) and "Always answer in French" in system_of(request)
    assert request["model"] == "gpt-4o"

    # another workspace is untouched
    fake_llm.enqueue("Hello.")
    await bot.send("@aibot hi", tenant="T2")
    assert system_of(fake_llm.chat_requests[-1]).startswith("You are aibot")
    assert fake_llm.chat_requests[-1]["model"] != "gpt-4o"


async def test_a_channel_setting_wins_in_that_channel_only_and_reset_restores(bot, fake_llm):
    await bot.send("/aibot settings set language German")
    [done] = await bot.send("/aibot channel set language Spanish", channel="C9")
    assert "this channel" in done
    fake_llm.enqueue("Hola.")
    await bot.send("@aibot hi", channel="C9")
    assert "Always answer in Spanish" in system_of(fake_llm.chat_requests[-1])
    fake_llm.enqueue("Hallo.")
    await bot.send("@aibot hi", channel="C1")
    assert "Always answer in German" in system_of(fake_llm.chat_requests[-1])

    [done] = await bot.send("/aibot channel reset language", channel="C9")
    assert done == "`language` for this channel is back to the workspace's."
    fake_llm.enqueue("Hallo.")
    await bot.send("@aibot hi", channel="C9")
    assert "Always answer in German" in system_of(fake_llm.chat_requests[-1])
    [shown] = await bot.send("/aibot settings")
    assert "`language`: “German”" in shown and "`persona`: default" in shown


async def test_every_change_is_in_the_audit_log_with_who_and_when(bot):
    await bot.send("/aibot settings set language French", user="U7", user_name="carol")
    await bot.send("/aibot settings reset language", user="U8", user_name="dave")
    await bot.send("/aibot settings set language French", tenant="T2")  # another workspace's log
    [log] = await bot.send("/aibot audit")
    lines = log.splitlines()[1:]
    assert len(lines) == 2
    assert "dave (U8) reset `language`" in lines[0] and "UTC" in lines[0]
    assert "carol (U7) set `language` to “French”" in lines[1]


async def test_members_cannot_read_or_change_settings_and_nothing_changes(bot, fake_llm):
    refusal = "Only workspace admins (or the bot's admins) can use /aibot settings."
    assert await bot.send("/aibot settings set persona Be rude.", is_admin=False) == [refusal]
    assert await bot.send("/aibot settings", is_admin=False) == [refusal]
    assert (await bot.send("/aibot audit", is_admin=False))[0].startswith("Only workspace admins")
    [log] = await bot.send("/aibot audit")
    assert log == "No settings have been changed in this workspace yet."


async def test_bad_keys_and_values_get_one_sentence_and_change_nothing(bot):
    [bad] = await bot.send("/aibot settings set colour blue")
    assert bad.startswith("There is no setting `colour`. Settings: persona, language")
    [bad] = await bot.send("/aibot settings set chat_model gpt 4o; drop table")
    assert "is not a model name" in bad
    [bad] = await bot.send("/aibot settings set digest_tz Mars/Olympus")
    assert "is not a time zone" in bad
    [bad] = await bot.send("/aibot channel set channels_allow #general", channel="C9")
    assert "set for the whole workspace" in bad
    [bad] = await bot.send("/aibot settings set channels_allow general-chat")
    assert bad.startswith("`general-chat` is not a channel")
    [bad] = await bot.send("/aibot settings set language")
    assert bad.startswith("Give `language` a value")
    [log] = await bot.send("/aibot audit")
    assert log == "No settings have been changed in this workspace yet."


async def test_channel_allow_list_and_deny_list(bot, fake_llm):
    await bot.send("/aibot settings set channels_allow <#C2|support> C3")
    before = len(fake_llm.chat_requests)
    [refused] = await bot.send("@aibot hi", channel="C1")
    assert refused.startswith("I don't answer in this channel")
    assert await bot.send("a follow-up in a thread", channel="C1", in_bot_thread=True) == []
    assert len(fake_llm.chat_requests) == before  # no model call
    fake_llm.enqueue("Hi there.")
    assert await bot.send("@aibot hi", channel="C2") == ["Hi there."]
    fake_llm.enqueue("Hi in a DM.")
    assert await bot.send("@aibot hi", channel="D1", is_dm=True) == ["Hi in a DM."]

    await bot.send("/aibot settings reset channels_allow")
    await bot.send("/aibot settings set channels_deny C2")
    [refused] = await bot.send("@aibot hi", channel="C2")
    assert refused.startswith("I don't answer in this channel")
    fake_llm.enqueue("Hi.")
    assert await bot.send("@aibot hi", channel="C1") == ["Hi."]


async def test_auto_routing_off_sends_data_questions_to_plain_chat(bot, fake_llm):
    await bot.send("/aibot settings set auto_route off")
    fake_llm.enqueue("I can't run queries from here.")
    await bot.send("@aibot what were total sales last month and the growth vs the month before?")
    request = fake_llm.chat_requests[-1]
    assert system_of(request).startswith("You are aibot") and not request.get("tools")


async def test_digest_on_without_a_time_uses_the_workspace_default(bot):
    await bot.send("/aibot settings set digest_time 08:30")
    await bot.send("/aibot settings set digest_tz Europe/Berlin")
    [on] = await bot.send("/digest on")
    assert "08:30" in on and "Europe/Berlin" in on


async def test_slack_admin_sets_the_persona_from_slack_and_the_next_answer_uses_it(slack, fake_llm):
    await slack.command("/aibot", f"settings set persona {PERSONA}")
    assert slack.fake.responses[-1]["text"].startswith("`persona` for this workspace is now")
    fake_llm.enqueue("Ada here.")
    await slack.event(load("app_mention", event_id="Ev1"))
    assert system_of(fake_llm.chat_requests[-1]).startswith(PERSONA)
    await slack.command("/aibot", "settings set persona Be rude.", user_id="U0ALICE", user_name="alice")
    assert slack.fake.responses[-1]["text"] == \
        "Only workspace admins and owners (or the bot's admins) can use /aibot settings."


async def test_discord_aibot_group_needs_manage_server_by_default(app, fake, discord_bot):
    group = discord_bot.tree.get_command("aibot")
    assert group.default_permissions.manage_guild
    assert {c.name for c in group.commands} >= {"settings", "channel", "audit"}


def home_opened(user: str) -> dict:
    """app_home_opened, as Slack documents it."""
    return {"token": "x", "team_id": "T0FAKETEAM", "api_app_id": "A1", "type": "event_callback",
            "event_id": f"EvHome{user}", "event_time": 1,
            "event": {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home",
                      "event_ts": "1515449522.000016"}}


async def test_slack_home_tab_shows_settings_and_usage_to_admins_only(slack, fake_llm):
    await slack.command("/aibot", f"settings set persona {PERSONA}")
    fake_llm.enqueue("Ada here.")
    await slack.event(load("app_mention", event_id="EvAsk"))
    await slack.event(home_opened("U2147483697"))  # an admin
    await slack.fake.wait_for(lambda: "U2147483697" in slack.fake.homes)
    admin_view = json.dumps(slack.fake.homes["U2147483697"])
    assert "You are Ada" in admin_view and "streaming: 1 requests" in admin_view
    await slack.event(home_opened("U0ALICE"))  # a member
    await slack.fake.wait_for(lambda: "U0ALICE" in slack.fake.homes)
    member_view = json.dumps(slack.fake.homes["U0ALICE"])
    assert "You are Ada" not in member_view and "requests" not in member_view
    assert "shown to workspace admins" in member_view
