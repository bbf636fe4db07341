"""Native streams in the renderer: the first text shows as soon as the model's first token
arrives (not one update interval later, nor one token later), and a stream offering
`finish` gets the last text and the stop in one platform call."""
from __future__ import annotations

import asyncio

from bot.core.surface import Limits
from bot.core.render import render_stream
from tests.harness import RecordingStream, StreamingConversation


async def test_first_token_is_shown_without_waiting_for_the_next_one():
    conv = StreamingConversation(limits=Limits(max_chars=4_000, update_interval=30.0, max_updates=100))
    shown_before_second_token = asyncio.Event()

    async def tokens():
        yield "Hel"  # part of a word: shown at once, the stream appends the rest
        await asyncio.sleep(0.3)
        if conv.messages and conv.messages[0].text:
            shown_before_second_token.set()
        yield "lo world"
        await asyncio.sleep(0.05)
        yield " again."

    rendered = await asyncio.wait_for(render_stream(tokens(), conv), 5)
    assert shown_before_second_token.is_set()  # "Hel" was visible before the model's next token
    assert conv.messages[0].versions[0] == "Hel"
    assert conv.messages[0].text == "Hello world again." and rendered.error is None


class FinishingStream(RecordingStream):
    async def finish(self, delta: str) -> None:
        await self.append(delta)
        self.conv.calls[-1] = ("finish", self.message_id)
        self.stopped = True


class FinishingConversation(StreamingConversation):
    async def open_stream(self, text: str = "") -> FinishingStream:
        stream = await super().open_stream(text)
        return FinishingStream(self, stream.message_id)


async def test_last_text_and_stop_go_in_one_call_when_the_stream_can_finish():
    conv = FinishingConversation(limits=Limits(max_chars=4_000, update_interval=30.0, max_updates=100))

    async def tokens():
        yield "Hello "
        await asyncio.sleep(0.05)
        yield "world."

    await render_stream(tokens(), conv)
    assert conv.messages[0].text == "Hello world."
    # the first words open the stream (one call), the rest and the end go in another
    assert [kind for kind, _ in conv.calls] == ["start", "finish"]
    assert conv.messages[0].versions[0] == "Hello "
