"""The core half of the answer controls, platform-free: Stop through the renderer,
Regenerate skipping the caches, a press that names an unknown answer."""
from __future__ import annotations

import asyncio

from bot.core.answers import Answers, Controls, Press, fresh
from bot.core.messages import CallInfo, Incoming
from bot.core.render import render_stream
from tests.harness import RecordingConversation

MSGS = [{"role": "user", "content": "What is the capital of France?"}]
CALL = CallInfo("test")


class ControlledConversation(RecordingConversation):
    """Records which controls were showing at each write."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.controls: Controls | None = None
        self.shown: list[Controls | None] = []

    async def post(self, text: str, *, ephemeral: bool = False) -> str:
        self.shown.append(self.controls)
        return await super().post(text, ephemeral=ephemeral)

    async def edit(self, message_id: str, text: str) -> None:
        self.shown.append(self.controls)
        await super().edit(message_id, text)


async def endless():
    n = 0
    while True:
        n += 1
        yield f"word{n} "
        await asyncio.sleep(0.005)


async def test_stop_ends_an_endless_stream_with_the_text_so_far_and_final_controls():
    msg = Incoming(platform="test", tenant="T", channel="C", user="U", text="go")
    conv = ControlledConversation()
    answers = Answers()
    answer = answers.begin(msg, conv)
    task = asyncio.create_task(render_stream(endless(), conv, answer=answer))
    while not conv.messages:
        await asyncio.sleep(0.01)
    assert conv.shown[0] == Controls(answer.id, running=True)
    assert answer.stop()
    result = await asyncio.wait_for(task, 5)
    assert result.stopped and conv.messages[0].text.startswith("word1 word2") and conv.texts[0].endswith("_(stopped)_")
    assert conv.shown[-1] == Controls(answer.id, running=False)


async def test_regenerate_skips_the_exact_cache_and_stores_the_new_answer(app, fake_llm):
    fake_llm.enqueue("Lyon.", "Paris.")
    first = await app.services.llm.complete(MSGS, call=CALL, cache=True)
    with fresh():
        again = await app.services.llm.complete(MSGS, call=CALL, cache=True)
    later = await app.services.llm.complete(MSGS, call=CALL, cache=True)
    assert (first.text, again.text, later.text) == ("Lyon.", "Paris.", "Paris.")
    assert not again.cached and later.cached and len(fake_llm.chat_requests) == 2


async def test_a_press_on_an_answer_nobody_remembers_gets_a_clear_note(app):
    conv = RecordingConversation()
    press = Press(action="stop", answer="ffff", platform="test", tenant="T", channel="C", user="U")
    await app.router.dispatch(press, conv)
    assert conv.texts == ["That answer has already finished."] and conv.messages[0].ephemeral


async def test_feedback_is_counted_per_pattern_and_model_in_stats_and_metrics(app, bot, fake_llm):
    import aiohttp

    from bot.core.answers import CURRENT
    from bot.core.http import HttpServer

    token = CURRENT.set("a1b2c3")
    try:
        await app.services.llm.complete(MSGS, call=CallInfo("streaming", "test", "T1", "C1", "U1"))
    finally:
        CURRENT.reset(token)
    feedback = app.services.feedback
    for user, rating in (("U1", 1), ("U2", -1), ("U3", -1)):
        await feedback.rate(Press(action="good", answer="a1b2c3", platform="test", tenant="T1", channel="C1", user=user), rating)
    [row] = await feedback.stats()
    assert (row.pattern, row.model, row.up, row.down) == ("streaming", "gpt-4o-mini", 1, 2)
    replies = await bot.send("/ai-stats")  # the harness's workspace, T1: its own answers' feedback
    assert "Feedback on answers" in replies[0]
    assert not await feedback.stats(platform="test", tenant="T2")  # never another workspace's
    server = HttpServer(app.services, host="127.0.0.1", port=0)
    await server.start()
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{server.bound_port}/metrics") as resp:
                body = await resp.text()
    finally:
        await server.stop()
    downs = [line for line in body.splitlines() if line.startswith("aibot_feedback_total{")
             and all(label in line for label in ('pattern="streaming"', 'model="gpt-4o-mini"', 'rating="down"'))]
    assert downs and float(downs[0].split()[-1]) >= 2  # this process's count (earlier tests may add to it)


async def test_a_long_answer_split_in_two_has_controls_only_on_its_last_message():
    from bot.core.surface import Limits

    async def long_answer():
        for i in range(60):
            yield f"sentence number {i}. "

    msg = Incoming(platform="test", tenant="T", channel="C", user="U", text="go")
    conv = ControlledConversation(limits=Limits(max_chars=500, update_interval=0.0, max_updates=1_000))
    answer = Answers().begin(msg, conv)
    await render_stream(long_answer(), conv, answer=answer)
    assert len(conv.messages) >= 2
    finals = {}
    for (kind, mid), shown in zip(conv.calls, conv.shown):
        finals[mid] = shown  # the controls at each message's last write
    assert finals[conv.messages[0].id] is None
    assert finals[conv.messages[-1].id] == Controls(answer.id, running=False)
