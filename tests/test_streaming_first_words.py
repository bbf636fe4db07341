"""The first words of a natively streamed answer show as soon as there is a whole word,
not one update interval later (the renderer holds back a partial word)."""
from __future__ import annotations

import asyncio

from bot.surface import Limits
from patterns.streaming import render_stream
from tests.harness import StreamingConversation


async def test_first_whole_word_is_shown_without_waiting_a_full_interval():
    conv = StreamingConversation(limits=Limits(max_chars=4_000, update_interval=30.0, max_updates=100))
    shown_after_second_token = asyncio.Event()

    async def tokens():
        yield "Hello"  # no word boundary yet: nothing can be shown
        await asyncio.sleep(0.05)
        yield " world"
        await asyncio.sleep(0.3)
        if conv.messages and conv.messages[0].text:
            shown_after_second_token.set()
        yield " again."

    rendered = await asyncio.wait_for(render_stream(tokens(), conv), 5)
    assert shown_after_second_token.is_set()  # "Hello " was visible before the answer ended
    assert conv.messages[0].versions[0] == "Hello "
    assert conv.messages[0].text == "Hello world again." and rendered.error is None
