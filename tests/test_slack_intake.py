"""Slack HTTP mode's intake: events are acknowledged on a thread of their own, so a bot
whose main loop is busy still answers Slack at once (Slack retries an event not
acknowledged within 3 s), and every event acknowledged is still answered exactly once.

The main loop is blocked for real here (a synchronous wait inside the test coroutine)
while the requests are in flight: an acknowledgement that needed the main loop could
not arrive at all until the block ends, so no timing threshold is involved."""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import aiohttp

from tests.slack_support import *  # noqa: F401,F403
from tests.slack_support import load
from tests.test_slack_http import http_bot, signed  # noqa: F401  (the fixture)


def post_from_threads(url: str, requests: list[tuple[str, dict]], *, timeout: float = 60.0) -> list[int]:
    """POST each (body, headers) from another thread while the calling thread, the main
    loop's, waits synchronously: nothing on the main loop runs meanwhile."""
    statuses: list[int | None] = [None] * len(requests)

    def post(i: int, body: str, headers: dict) -> None:
        req = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                statuses[i] = resp.status
        except urllib.error.HTTPError as exc:
            statuses[i] = exc.code

    for i, (body, headers) in enumerate(requests):  # one after another, as Slack's retries come
        thread = threading.Thread(target=post, args=(i, body, headers))
        thread.start()
        thread.join(timeout + 5)  # blocks the event loop on purpose
    return statuses


def mention(n: int) -> str:
    return json.dumps(load("app_mention", event_id=f"Ev0INTAKE{n}", channel=f"C0INTAKE{n}", ts=f"1729999327.00{n}"))


async def test_an_event_is_acknowledged_while_the_main_loop_is_blocked_and_answered_once_after(
        http_bot, fake_slack, fake_llm, app):
    session, url, adapter = http_bot
    fake_llm.enqueue("Answered once the bot was free again.")
    body = mention(1)
    fake_slack.deliver(json.loads(body))
    retry = signed(body) | {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    statuses = post_from_threads(url, [(body, signed(body)), (body, retry)])
    assert statuses == [200, 200]  # both acknowledged while nothing else could run
    assert fake_llm.chat_requests == []  # and only acknowledged: the answer comes from the main loop
    await fake_slack.wait_for(lambda: fake_slack.calls_to("chat.stopStream"))
    await adapter.idle()
    await app.router.drain()
    assert len(fake_llm.chat_requests) == 1  # the retry was not answered again
    assert [m.text for m in fake_slack.bot_messages()] == ["Answered once the bot was free again."]


async def test_a_bad_signature_is_refused_by_the_intake_even_while_the_main_loop_is_blocked(
        http_bot, fake_slack, fake_llm, app):
    session, url, adapter = http_bot
    body = mention(2)
    fake_slack.deliver(json.loads(body))
    statuses = post_from_threads(url, [(body, signed(body, secret="not-the-secret")),
                                       (body, signed(body) | {"X-Slack-Request-Timestamp": "yesterday"})])
    assert statuses == [401, 401]
    await adapter.idle()
    await app.router.drain()
    assert fake_llm.chat_requests == []
    assert adapter.handled == 0
    # the event, properly signed, is still taken: the refused attempts did not mark it seen
    assert post_from_threads(url, [(body, signed(body))]) == [200]
    await fake_slack.wait_for(lambda: fake_slack.calls_to("chat.stopStream"))
    await adapter.idle()
    assert len(fake_llm.chat_requests) == 1


async def test_events_acknowledged_before_a_stop_are_answered_and_later_ones_are_left_to_slack(
        http_bot, fake_slack, fake_llm, app):
    session, url, adapter = http_bot
    bodies = [mention(n) for n in (3, 4, 5)]
    for body in bodies:
        fake_slack.deliver(json.loads(body))
        fake_llm.enqueue("Answered before the bot stopped.")
    assert post_from_threads(url, [(b, signed(b)) for b in bodies]) == [200, 200, 200]
    await adapter.stop()  # at once: the three are still only queued for the main loop
    await app.router.drain()
    assert len(fake_llm.chat_requests) == 3
    assert len(fake_slack.calls_to("chat.stopStream")) == 3
    late = mention(6)
    async with session.post(url, data=late, headers=signed(late)) as resp:
        assert resp.status == 503  # not acknowledged: Slack delivers it again, to a process that answers it
    await app.router.drain()
    assert len(fake_llm.chat_requests) == 3


async def test_the_rest_of_the_http_server_is_served_through_the_front_door(http_bot, app):
    session, url, adapter = http_bot
    base = url.rsplit("/slack/", 1)[0]
    async with session.get(f"{base}/health") as resp:
        assert resp.status == 200
        assert (await resp.json())["database"] == "ok"
    async with session.get(f"{base}/metrics") as resp:
        assert resp.status == 200
        assert "aibot_" in await resp.text()
    async with session.get(f"{base}/no-such-page") as resp:
        assert resp.status == 404
    assert app.http.front is not None  # served by the front door, not by the main loop's listener


async def test_without_the_intake_the_events_are_acknowledged_by_bolt_on_the_main_loop(app, fake_slack, slack_settings,
                                                                                         fake_llm):
    import asyncio

    from pydantic import SecretStr

    from adapters.slack.adapter import SlackAdapter
    from tests.test_slack_http import SECRET

    settings = slack_settings.model_copy(update=dict(app_token=None, signing_secret=SecretStr(SECRET), http_port=0,
                                                     intake=False))
    app.settings = app.settings.model_copy(update=dict(http_port=None)).with_sections(settings)
    adapter = SlackAdapter(settings=settings)
    serving = asyncio.create_task(app.serve([adapter]))
    while adapter.me is None or app.http is None or app.http.bound_port is None:
        await asyncio.sleep(0.01)
    assert app.http.front is None
    fake_llm.enqueue("Acked by Bolt.")
    body = mention(7)
    fake_slack.deliver(json.loads(body))
    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://127.0.0.1:{app.http.bound_port}{settings.http_path}", data=body,
                                headers=signed(body)) as resp:
            assert resp.status == 200
    await fake_slack.wait_for(lambda: fake_slack.calls_to("chat.stopStream"))
    await adapter.stop()
    await serving
    assert [m.text for m in fake_slack.bot_messages()] == ["Acked by Bolt."]


async def test_a_socket_mode_envelope_is_acknowledged_while_the_main_loop_is_blocked_and_answered_once(
        slack, fake_slack, fake_llm, app):
    """The fake Slack runs on the main loop, so it reads the ack only after the block; the
    intake's own count shows the ack went over the WebSocket while nothing else ran."""
    import time

    from adapters.slack.socket_intake import SocketIntake

    assert isinstance(slack.adapter._socket, SocketIntake)
    fake_llm.enqueue("Answered after the stall.")
    env = await slack.event(load("app_mention", event_id="Ev0SOCKET1"), settle=False)
    handoff = slack.adapter._intake
    deadline = time.monotonic() + 60
    while handoff.acked < 1 and time.monotonic() < deadline:
        time.sleep(0.01)  # blocks the main loop on purpose: the fake, the bot, everything on it
    assert handoff.acked == 1
    assert fake_llm.chat_requests == []
    await fake_slack.wait_acked(env)
    again = await slack.event(load("app_mention", event_id="Ev0SOCKET1"), retry_attempt=1, settle=False)
    await fake_slack.wait_acked(again)  # a redelivery is acknowledged too, and not answered again
    await fake_slack.wait_for(lambda: fake_slack.calls_to("chat.stopStream"))
    await slack.adapter.idle()
    await app.router.drain()
    assert len(fake_llm.chat_requests) == 1
    assert [m.text for m in fake_slack.bot_messages()] == ["Answered after the stall."]


async def test_events_a_killed_process_acknowledged_are_answered_by_the_next_one_once(
        app, fake_slack, slack_settings, fake_llm, tmp_path):
    """kill -9 between the intake's ack and the main loop reaching the event: Slack will not
    send it again, so the next process on the machine takes it from the dead one's folder;
    one that had already reached the core (its dedupe row exists) is not answered twice."""
    import asyncio
    import subprocess
    from urllib.parse import quote

    from pydantic import SecretStr

    from adapters.slack.adapter import SlackAdapter
    from bot.core import processes
    from bot.core.dedupe import Dedupe
    from tests.test_slack_http import SECRET

    gone = subprocess.Popen(["true"])
    gone.wait()  # a process id that no longer runs: the killed bot's
    folder = tmp_path / "acked" / quote(f"{processes.machine()}:{gone.pid}:0badcafe", safe="")
    folder.mkdir(parents=True)
    lost, reached = json.loads(mention(8)), json.loads(mention(9))
    for n, payload in enumerate((lost, reached)):
        fake_slack.deliver(payload)
        (folder / f"{n:012d}.json").write_text(json.dumps(payload))
    assert await Dedupe(app.services.db).first_time(f"slack:{reached['event_id']}")  # as the dead process did

    app.services.settings.data_dir = tmp_path
    settings = slack_settings.model_copy(update=dict(app_token=None, signing_secret=SecretStr(SECRET), http_port=0))
    app.settings = app.settings.model_copy(update=dict(http_port=None)).with_sections(settings)
    adapter = SlackAdapter(settings=settings)
    fake_llm.enqueue("Taken up after the crash.")
    fake_llm.enqueue("A fresh one.")
    serving = asyncio.create_task(app.serve([adapter]))
    try:
        await fake_slack.wait_for(lambda: fake_slack.calls_to("chat.stopStream"))
        await adapter.idle()
        await app.router.drain()
        assert [m.text for m in fake_slack.bot_messages()] == ["Taken up after the crash."]
        assert not folder.exists()
        # this process's own events are on disk only until answered
        body = mention(10)
        fake_slack.deliver(json.loads(body))
        assert post_from_threads(f"http://127.0.0.1:{app.http.bound_port}{settings.http_path}",
                                 [(body, signed(body))]) == [200]
        mine = adapter._acked.dir
        assert len(list(mine.glob("*.json"))) == 1  # acknowledged, not yet handed over: kept
        await fake_slack.wait_for(lambda: len(fake_slack.calls_to("chat.stopStream")) == 2)
        await adapter.idle()
        assert list(mine.glob("*.json")) == []
    finally:
        await adapter.stop()
        await serving
    assert len(fake_llm.chat_requests) == 2


async def test_an_acknowledged_event_whose_hand_over_fails_is_handed_over_again_not_dropped(tmp_path):
    """Slack does not send an acknowledged event again: if Bolt's dispatch fails before an
    answer takes it (in OAuth mode, the workspace's token read while the database is
    down), the event is dispatched again after a pause, and its file stays until then."""
    import asyncio

    from slack_bolt.response import BoltResponse

    from adapters.slack.acked import AckedSpool
    from adapters.slack.intake import Handoff

    calls, tasks, files_while_failing = [], [], []

    async def dispatch(body, headers):
        calls.append(body["event_id"])
        if len(calls) == 1:
            files_while_failing.extend(tmp_path.rglob("*.json"))
            raise ConnectionRefusedError("the installation store is unreachable")
        return BoltResponse(status=200, body="")

    def track(coro):
        tasks.append(asyncio.ensure_future(coro))
        return tasks[-1]

    handoff = Handoff(loop=asyncio.get_running_loop(), dispatch=dispatch, track=track)
    handoff.spool, handoff.ready = AckedSpool(folder=tmp_path, owner="this-process"), True
    payload = json.loads(mention(11))
    assert await asyncio.to_thread(handoff.event, payload, {})  # acknowledged, from the intake's thread
    for _ in range(1000):
        if len(calls) == 2 and tasks and all(t.done() for t in tasks):
            break
        await asyncio.sleep(0.01)
    assert calls == [payload["event_id"]] * 2  # tried again, not dropped
    assert len(files_while_failing) == 1  # kept on disk while it could not be handed over
    assert list(tmp_path.rglob("*.json")) == []  # handed over: no longer needed


async def test_events_a_process_in_a_replaced_container_acknowledged_are_taken_up(
        app, fake_slack, slack_settings, fake_llm, tmp_path):
    """A container restarted after an out-of-memory kill has a new PID namespace, so its
    predecessor is not "a process on this machine"; it is gone because it has no live
    row in the process registry, and its acknowledged events are answered, once."""
    import asyncio
    from urllib.parse import quote

    from pydantic import SecretStr

    from adapters.slack.adapter import SlackAdapter
    from tests.test_slack_http import SECRET

    folder = tmp_path / "acked" / quote("old-container/4026531999:7:0badcafe", safe="")
    folder.mkdir(parents=True)
    lost = json.loads(mention(12))
    fake_slack.deliver(lost)
    (folder / f"{0:012d}.json").write_text(json.dumps(lost))

    app.services.settings.data_dir = tmp_path
    settings = slack_settings.model_copy(update=dict(app_token=None, signing_secret=SecretStr(SECRET), http_port=0))
    app.settings = app.settings.model_copy(update=dict(http_port=None)).with_sections(settings)
    adapter = SlackAdapter(settings=settings)
    fake_llm.enqueue("Taken up from the old container.")
    serving = asyncio.create_task(app.serve([adapter]))
    try:
        await fake_slack.wait_for(lambda: fake_slack.calls_to("chat.stopStream"), timeout=30)
        await adapter.idle()
        await app.router.drain()
        assert [m.text for m in fake_slack.bot_messages()] == ["Taken up from the old container."]
        assert not folder.exists()
    finally:
        await adapter.stop()
        await serving
    assert len(fake_llm.chat_requests) == 1
