"""The platform-free streaming renderer: what a user sees while an answer streams."""
from __future__ import annotations

import asyncio
import logging

import pytest

from bot.core.errors import LLMError
from bot.core.surface import Limits, StreamUnsupported
from bot.core import render as streaming
from bot.core.render import close_fence, open_fence, render_stream, split_message
from tests.harness import RecordingConversation, StreamingConversation


async def tokens(parts, delay=0.0, fail_after=None):
    for i, p in enumerate(parts):
        if fail_after is not None and i == fail_after:
            raise LLMError("cut", "connection dropped")
        if delay:
            await asyncio.sleep(delay)
        yield p


# ------------------------------------------------------------------ splitting


def test_split_prefers_paragraph_boundaries():
    text = "first paragraph " * 10 + "\n\n" + "second paragraph " * 10
    head, consumed, prefix = split_message(text, 200)
    assert head == ("first paragraph " * 10).rstrip()
    assert text[consumed:].startswith("second")
    assert prefix == ""


def test_split_inside_code_block_closes_and_reopens_it():
    code = "```python\n" + "".join(f"x{i} = {i}\n" for i in range(100)) + "```\n"
    text = "Here is the code:\n\n" + code
    head, consumed, prefix = split_message(text, 300)
    assert len(head) <= 300
    assert head.endswith("```") and open_fence(head) is None
    assert prefix == "```python\n"
    rest = prefix + text[consumed:]
    assert open_fence(rest) is None  # the reopened block is closed by the original fence


def test_close_fence_for_partial_display():
    assert close_fence("see:\n```sh\nls") == "see:\n```sh\nls\n```"
    assert close_fence("plain text") == "plain text"


# ------------------------------------------------------------------ fallback: post + edits


async def test_answer_appears_progressively_and_ends_complete():
    conv = RecordingConversation(limits=Limits(max_chars=4000, update_interval=0.05, max_updates=100))
    parts = [f"word{i} " for i in range(30)]
    result = await render_stream(tokens(parts, delay=0.01), conv)
    assert conv.texts == ["".join(parts)]
    versions = conv.messages[0].versions
    assert len(versions) >= 3, "the answer should be shown progressively, not only at the end"
    assert all(v.startswith(versions[0][:5]) for v in versions)
    assert result.error is None and result.text == "".join(parts)


async def test_updates_respect_the_interval_and_the_cap():
    conv = RecordingConversation(limits=Limits(max_chars=4000, update_interval=10.0, max_updates=100))
    await render_stream(tokens([f"t{i} " for i in range(50)], delay=0.002), conv)
    # one post on the first tokens, then nothing until the final edit: interval is 10 s
    assert [kind for kind, _ in conv.calls] == ["post", "edit"]

    capped = RecordingConversation(limits=Limits(max_chars=4000, update_interval=0.0, max_updates=3))
    await render_stream(tokens([f"t{i} " for i in range(50)], delay=0.001), capped)
    edits = [c for c in capped.calls if c[0] == "edit"]
    assert len(edits) <= 4  # 3 intermediate + the final one
    assert capped.texts[0] == "".join(f"t{i} " for i in range(50))


async def test_edits_never_overlap_even_when_the_platform_is_slow():
    conv = RecordingConversation(limits=Limits(max_chars=4000, update_interval=0.0, max_updates=1000), write_delay=0.02)
    await render_stream(tokens([f"w{i} " for i in range(40)], delay=0.001), conv)
    assert conv.overlaps == 0
    assert conv.texts == ["".join(f"w{i} " for i in range(40))]


async def test_long_answer_continues_in_new_messages_without_breaking_code():
    conv = RecordingConversation(limits=Limits(max_chars=500, update_interval=0.0, max_updates=1000))
    answer = "Intro line.\n\n```python\n" + "".join(f"print({i})\n" for i in range(150)) + "```\nDone."
    await render_stream(tokens([answer[i : i + 7] for i in range(0, len(answer), 7)]), conv)
    assert len(conv.messages) >= 3
    for text in conv.texts:
        assert len(text) <= 500
        assert open_fence(text) is None, f"a message was left inside a code block: {text[-40:]!r}"
    joined = "".join(conv.texts)
    for i in range(150):
        assert f"print({i})" in joined
    assert conv.texts[-1].endswith("Done.")


async def test_stream_failing_midway_keeps_text_and_adds_a_visible_note():
    conv = RecordingConversation()
    result = await render_stream(tokens(["Half ", "an ", "answer"], fail_after=2), conv)
    assert isinstance(result.error, LLMError)
    final = conv.texts[-1]
    assert final.startswith("Half an")
    assert "cut short" in final
    assert "connection dropped" not in final  # no raw exception text


async def test_failure_before_any_text_posts_only_the_reason():
    conv = RecordingConversation()
    await render_stream(tokens(["x"], fail_after=0), conv)
    assert conv.texts == ["The language model stopped answering midway."]


async def test_a_failed_edit_is_logged_and_the_final_text_still_lands(caplog):
    conv = RecordingConversation(limits=Limits(max_chars=4000, update_interval=0.0, max_updates=1000), fail_edits=2)
    with caplog.at_level(logging.WARNING):
        await render_stream(tokens([f"p{i} " for i in range(10)], delay=0.005), conv)
    assert conv.texts == ["".join(f"p{i} " for i in range(10))]
    assert "edit failed" in caplog.text


async def test_a_failed_final_edit_is_retried_with_backoff(monkeypatch):
    monkeypatch.setattr(streaming, "FINAL_EDIT_BACKOFF", 0.01)
    conv = RecordingConversation(limits=Limits(max_chars=4000, update_interval=10.0, max_updates=1000), fail_edits=2)
    await render_stream(tokens(["Hello ", "world, ", "all done."], delay=0.01), conv)
    assert conv.texts == ["Hello world, all done."]  # one message, complete
    assert [k for k, _ in conv.calls].count("edit") == 3  # two refused, the third landed


async def test_a_final_edit_refused_every_time_posts_the_rest_as_a_new_message(monkeypatch, caplog):
    monkeypatch.setattr(streaming, "FINAL_EDIT_BACKOFF", 0.01)
    conv = RecordingConversation(limits=Limits(max_chars=4000, update_interval=10.0, max_updates=1000), fail_edits=100)
    answer = ["Step one.\n", "```py\nx = 1\n", "y = 2\n```\n", "That is all."]
    with caplog.at_level(logging.WARNING):
        await render_stream(tokens(answer, delay=0.01), conv)
    first, rest = conv.texts
    assert first == "Step one.\n"  # the first post; every edit after it was refused
    assert rest == "```py\nx = 1\ny = 2\n```\nThat is all."  # nothing lost, code block intact
    assert [k for k, _ in conv.calls].count("edit") == streaming.FINAL_EDIT_TRIES
    assert "final edit failed (attempt 3 of 3)" in caplog.text


# ------------------------------------------------------------------ native streams


async def test_native_stream_appends_deltas_and_stops_once():
    conv = StreamingConversation(limits=Limits(max_chars=4000, update_interval=0.0, max_updates=1000))
    await render_stream(tokens(["Hello", ", ", "world", "!"], delay=0.005), conv)
    assert conv.texts == ["Hello, world!"]
    kinds = [k for k, _ in conv.calls]
    assert kinds[0] == "start" and kinds[-1] == "stop" and kinds.count("stop") == 1
    assert "post" not in kinds and "edit" not in kinds


async def test_native_stream_splits_long_answers_into_several_streams():
    conv = StreamingConversation(limits=Limits(max_chars=300, update_interval=0.0, max_updates=1000))
    answer = " ".join(f"sentence{i}." for i in range(120))
    await render_stream(tokens([answer[i : i + 11] for i in range(0, len(answer), 11)], delay=0.0005), conv)
    assert len(conv.messages) >= 3
    assert all(len(t) <= 310 for t in conv.texts)
    assert " ".join(t.strip() for t in conv.texts).split() == answer.split()


async def test_falls_back_to_edits_when_native_streaming_is_unsupported():
    class NoStream(StreamingConversation):
        async def open_stream(self, text: str = ""):
            raise StreamUnsupported()

    conv = NoStream()
    await render_stream(tokens(["a ", "b ", "c"]), conv)
    assert conv.texts == ["a b c"]
    assert conv.calls[0][0] == "post"


@pytest.mark.parametrize("native", [False, True])
async def test_thinking_status_is_shown_until_the_first_token(native):
    base = StreamingConversation if native else RecordingConversation
    seen = []

    class WithStatus(base):
        async def set_status(self, text):
            seen.append((text, len(self.messages)))

    conv = WithStatus()
    await render_stream(tokens(["slow ", "answer"], delay=0.02), conv)
    assert seen[0] == ("is thinking…", 0)  # shown before anything was posted
    assert seen[-1][0] is None  # cleared
