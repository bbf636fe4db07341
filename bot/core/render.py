"""The renderer: a model's token stream shown progressively on any platform (the core's
half of the streaming pattern; patterns/chat is the other).

With a native stream (`Conversation.open_stream`, opened with the first text) the
renderer appends deltas; otherwise it posts once the first tokens arrive and edits that message on a
timer. Either way:

- updates are at least `limits.update_interval` apart (read before each update, so the
  adapter can slow down under load) and at most `limits.max_updates` per message, plus
  the final one;
- two updates of one message never overlap (one loop awaits each write);
- a message longer than `limits.max_chars` continues in a new message, split at a
  paragraph or line where possible and never inside a code block without closing it
  and reopening it in the next message;
- an answer stopped with its Stop control (`answer`) keeps the text so far plus a note;
  while it runs and at its final write, a conversation with `controls` shows Stop, then
  Regenerate and 👍/👎 (`bot.core.answers`);
- a stream that fails midway leaves the text so far plus a visible note; a failed edit
  is logged, not raised (the next update carries the whole text anyway) and counts
  against the pacing like a successful one (a refused write must not be retried at
  once); the final edit, or the final append of a native stream, is retried with
  backoff, and if it still fails the missing text is posted as a new message, so an
  answer is never left incomplete;
- a message that no longer exists (`MessageGone`: a user deleted it) ends the answer
  quietly; a reply location that cannot be edited (`WholeAnswerOnly`) gets the whole
  answer once, at the end.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field

from bot.core.answers import Answer, Controls
from bot.core.errors import ShuttingDown, user_message_for
from bot.core.surface import Conversation, MessageGone, StreamUnsupported, WholeAnswerOnly, post_whole

log = logging.getLogger(__name__)

THINKING = "is thinking…"
STOPPED_NOTE = "_(stopped)_"
FINAL_EDIT_TRIES = 3  # the last edit of a message, on top of the SDK's own retries
FINAL_EDIT_BACKOFF = 0.5  # seconds before the second try, doubling
_FENCE = re.compile(r"^\s*(```+|~~~+)(.*)$")


@dataclass
class Rendered:
    """What the renderer did: the model's text, the messages it wrote, any error."""

    text: str = ""
    message_ids: list[str] = field(default_factory=list)
    error: BaseException | None = None
    writes: int = 0  # platform calls that changed visible text (post/edit/append/stop)
    stopped: bool = False  # someone pressed Stop
    attempts: int = 0  # platform write calls made, refused ones included (they cost budget too)
    first_visible: float | None = None  # monotonic time of the first visible text
    gone: bool = False  # the message was deleted under the answer: writing stopped
    on_message: Callable[..., None] | None = field(default=None, repr=False)  # told of each new message (journal)

    def created(self, message_id: str, *, native: bool = False) -> None:
        self.message_ids.append(message_id)
        if self.on_message is not None:
            try:
                self.on_message(message_id, native=native)
            except Exception:
                log.warning("could not record a new message of the answer", exc_info=True)


# ---------------------------------------------------------------- message splitting


def remaining(shown: str, text: str) -> str:
    """What of `text` a message showing `shown` is missing, as a message of its own:
    from the last line (or word) both share, a code block left open there reopened."""
    common = len(os.path.commonprefix([shown, text]))
    if common >= len(text):
        return ""
    cut = max(text.rfind("\n", 0, common) + 1, 0)
    if cut == 0:
        cut = text.rfind(" ", 0, common) + 1
    fence = open_fence(text[:cut])
    return (fence + "\n" if fence else "") + text[cut:]


def open_fence(text: str) -> str | None:
    """The opening line of a code block left open at the end of `text`, if any."""
    opened: str | None = None
    for line in text.split("\n"):
        m = _FENCE.match(line)
        if not m:
            continue
        if opened is None:
            opened = line.strip()
        elif m.group(2).strip() == "":
            opened = None
    return opened


def close_fence(text: str) -> str:
    """`text` with an unterminated code block closed, for display of a partial answer."""
    return text + "\n```" if open_fence(text) is not None else text


def split_message(text: str, limit: int, *, min_cut: int = 0) -> tuple[str, int, str]:
    """Split `text` for a platform limit of `limit` characters.

    Returns (head to post now, characters of `text` consumed, prefix for the next
    message). The head ends at a paragraph, line or word boundary when one lies in the
    second half of the window (and not before `min_cut`, what an append-only stream has
    already shown); an open code block is closed in the head and reopened (same fence
    line, same language) by the prefix.
    """
    if len(text) <= limit:
        return text, len(text), ""
    closing = "\n```"
    window = text[: max(1, limit - len(closing))]
    floor = max(len(window) // 2, len(text[:min_cut].rstrip()))
    cut = -1
    for sep in ("\n\n", "\n", " "):
        pos = window.rfind(sep)
        if pos >= floor:
            cut = pos
            break
    if cut <= 0:
        cut = max(len(window), min(min_cut, len(text)))
    head = text[:cut]
    consumed = cut
    while consumed < len(text) and text[consumed] in "\n ":
        consumed += 1
    fence = open_fence(head)
    if fence is not None:
        return head.rstrip() + closing, consumed, fence + "\n"
    return head.rstrip(), consumed, ""


# ---------------------------------------------------------------- sinks


class _Sink:
    """Writes the current answer text; splits into several messages past the limit."""

    def __init__(self, conv: Conversation, result: Rendered) -> None:
        self.conv = conv
        self.result = result
        self.offset = 0  # where in the full text the current message starts
        self.prefix = ""  # reopened code fence carried into the current message

    async def update(self, full: str, *, final: bool) -> None:
        limit = self.conv.limits.max_chars
        text = self.prefix + full[self.offset :]
        while len(text) > limit:
            head, consumed, reopen = split_message(text, limit, min_cut=self.shown_chars)
            if consumed <= len(self.prefix):  # pathological tiny limit: hard cut
                head, consumed, reopen = text[:limit], limit, ""
            controls = getattr(self.conv, "controls", None)
            if controls is not None:  # a finished part: no controls of its own
                self.conv.controls = None
            try:
                await self._write(head, final=True)
            finally:
                if controls is not None:
                    self.conv.controls = controls
            self.offset += consumed - len(self.prefix)
            self.prefix = reopen
            text = self.prefix + full[self.offset :]
        await self._write(text, final=final)

    def _visible(self) -> None:
        self.result.writes += 1
        if self.result.first_visible is None:
            self.result.first_visible = time.monotonic()

    @property
    def shown_chars(self) -> int:
        """Characters of the current message that cannot be taken back."""
        return 0

    async def _write(self, text: str, *, final: bool) -> None:
        raise NotImplementedError


class _EditSink(_Sink):
    """Fallback: post the first text, then edit it."""

    def __init__(self, conv: Conversation, result: Rendered) -> None:
        super().__init__(conv, result)
        self.message_id: str | None = None
        self.shown = ""
        self.updates = 0
        self.refresh = False  # the final write goes even with the same text (the controls changed)
        # post once, at the end: the reply location cannot be edited, or the platform's edit
        # budget is backed up (`limits.whole_only`, e.g. a busy Slack workspace)
        self.whole_only = bool(getattr(conv.limits, "whole_only", False))

    async def _write(self, text: str, *, final: bool) -> None:
        shown = text if final else close_fence(text)
        if not shown.strip():
            if final:
                self.message_id = None
            return
        if self.whole_only and not final:
            return
        if self.message_id is None:
            self.result.attempts += 1
            try:
                self.message_id = await self.conv.post(shown)
            except WholeAnswerOnly:
                self.whole_only = True
                if not final:
                    return
                self.result.attempts += 1
                self.message_id = await self.conv.post(shown)
            self.result.created(self.message_id)
            self.shown, self.updates = shown, 0
            self._visible()
        elif final and (shown != self.shown or self.refresh):
            await self._final_edit(shown)
        elif shown != self.shown and self.updates < self.conv.limits.max_updates:
            self.result.attempts += 1
            try:
                await self.conv.edit(self.message_id, shown)
            except MessageGone:
                raise
            except Exception:  # the next update, or the final one, carries the whole text
                log.warning("progressive edit failed", exc_info=True)
            else:
                self.shown = shown
                self.updates += 1
                self._visible()
        if final:
            self.message_id = None

    async def _final_edit(self, text: str) -> None:
        """The last edit of a message: retried with backoff (FINAL_EDIT_TRIES); if the
        platform still refuses it, the text not yet shown is posted as a new message so
        the answer is never left incomplete."""
        for attempt in range(FINAL_EDIT_TRIES):
            self.result.attempts += 1
            try:
                await self.conv.edit(self.message_id, text)
            except MessageGone:
                raise
            except Exception:
                log.warning("final edit failed (attempt %d of %d)", attempt + 1, FINAL_EDIT_TRIES, exc_info=True)
                if attempt + 1 < FINAL_EDIT_TRIES:
                    await asyncio.sleep(FINAL_EDIT_BACKOFF * 2**attempt)
            else:
                self.shown = text
                self.updates += 1
                self._visible()
                return
        await _post_rest(self, self.shown, text)


async def _post_rest(sink: _Sink, shown: str, text: str) -> None:
    """Post what of `text` a message showing `shown` is missing, as a new message."""
    rest = remaining(shown, text)
    if rest.strip():
        sink.result.attempts += 1
        sink.result.created(await post_whole(sink.conv, rest))
        sink._visible()


class _NativeSink(_Sink):
    """The platform's own append-only stream."""

    def __init__(self, conv: Conversation, result: Rendered) -> None:
        super().__init__(conv, result)
        self.stream = None
        self.sent = ""
        self.updates = 0

    @property
    def shown_chars(self) -> int:
        return len(self.sent)

    async def _write(self, text: str, *, final: bool) -> None:
        if self.stream is None:
            # the first text goes with the call that opens the stream: one round trip to
            # the first visible text, and no token interval spent holding back a partial
            # word (that matters only near a message's size limit, far from here)
            first = text
            if not first.strip():
                return
            self.stream = await self.conv.open_stream(first)  # type: ignore[attr-defined]
            self.result.created(getattr(self.stream, "message_id", ""), native=True)
            self.sent, self.updates = first, 0
            self._visible()
            if not final:
                return
        if not final:  # hold back a partial word: a later split can then fall between words
            boundary = max(text.rfind(" "), text.rfind("\n"))
            text = text[: boundary + 1] if boundary >= len(self.sent) else self.sent
        delta = text[len(os.path.commonprefix([text, self.sent])) :]
        finish = getattr(self.stream, "finish", None)  # optional: last text and stop in one call
        if final and delta and finish is not None:
            if await self._final(lambda: finish(delta), text):
                self.stream = None
                return
            delta = ""  # the text went out as a new message; the stream still needs its stop
        if final and delta:
            await self._final(lambda: self.stream.append(delta), text)
        elif delta and self.updates < self.conv.limits.max_updates:
            self.result.attempts += 1
            try:
                await self.stream.append(delta)
            except MessageGone:
                raise
            except Exception:  # keep `sent`: the missed delta goes with the next append
                log.warning("stream append failed", exc_info=True)
            else:
                self.sent = text
                self.updates += 1
                self._visible()
        if final:
            self.result.attempts += 1
            try:
                await self.stream.stop()
            except MessageGone:
                raise
            except Exception:  # the text is shown already; only the "streaming" state stays
                log.warning("stream stop failed", exc_info=True)
            self.stream = None

    async def _final(self, write, text: str) -> bool:
        """The last text of a stream: retried with backoff; if the platform still refuses
        it, what is missing is posted as a new message (never lost)."""
        for attempt in range(FINAL_EDIT_TRIES):
            self.result.attempts += 1
            try:
                await write()
            except MessageGone:
                raise
            except Exception:
                log.warning("stream's last write failed (attempt %d of %d)", attempt + 1, FINAL_EDIT_TRIES,
                            exc_info=True)
                if attempt + 1 < FINAL_EDIT_TRIES:
                    await asyncio.sleep(FINAL_EDIT_BACKOFF * 2**attempt)
            else:
                self.sent = text
                self._visible()
                return True
        await _post_rest(self, self.sent, text)
        return False


# ---------------------------------------------------------------- the renderer


class _Pump:
    """Reads the model's stream in its own task so slow platform writes never stall it."""

    def __init__(self, chunks: AsyncIterable[str]) -> None:
        self.parts: list[str] = []
        self.changed = asyncio.Event()
        self.error: BaseException | None = None
        self.task = asyncio.create_task(self._run(chunks))

    async def _run(self, chunks: AsyncIterable[str]) -> None:
        try:
            async for chunk in chunks:
                if chunk:
                    self.parts.append(chunk)
                    self.changed.set()
        except Exception as exc:  # reported with the text so far, not raised
            self.error = exc
        finally:
            self.changed.set()

    @property
    def text(self) -> str:
        if len(self.parts) > 1:
            self.parts[:] = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""

    @property
    def done(self) -> bool:
        return self.task.done()


def with_error_note(text: str, error: BaseException | None) -> str:
    """The final text: the answer so far, and a visible note if it was cut short."""
    if error is None:
        return text
    reason = user_message_for(error)
    if not text.strip():
        return reason
    return f"{close_fence(text.rstrip())}\n\n⚠️ _Answer cut short. {reason}_"


def with_stop_note(text: str) -> str:
    return f"{close_fence(text.rstrip())}\n\n{STOPPED_NOTE}" if text.strip() else STOPPED_NOTE


async def render_stream(chunks: AsyncIterable[str], conv: Conversation, *, answer: Answer | None = None,
                        status_on: bool = False, on_message: Callable[..., None] | None = None) -> Rendered:
    """Render a stream of text deltas into `conv`; see the module docstring. `answer`:
    the answer this is, whose Stop control cancels the stream. `status_on`: the caller
    already shows the "thinking" status (the renderer clears it beside the first words).
    `on_message(id, native=)`: called as each platform message (or native stream) of the
    answer is created."""
    result = Rendered(on_message=on_message)
    native = hasattr(conv, "open_stream")
    sink: _Sink = _NativeSink(conv, result) if native else _EditSink(conv, result)
    set_status = getattr(conv, "set_status", None)
    controlled = answer is not None and hasattr(conv, "controls")
    if controlled:
        conv.controls = Controls(answer.id, running=True)  # type: ignore[attr-defined]
    pump = _Pump(chunks)
    if answer is not None:
        answer.attach(pump.task)
    status_on = status_on and set_status is not None
    clearing: asyncio.Task | None = None
    try:
        if set_status is not None and not status_on:
            status_on = await _status(set_status, THINKING)
        last = float("-inf")
        while True:
            await pump.changed.wait()
            if pump.done:
                break
            wait = last + conv.limits.update_interval - time.monotonic()
            if wait > 0:
                await asyncio.wait({pump.task}, timeout=wait)
                if pump.done:
                    break
            pump.changed.clear()
            text = pump.text
            if not text.strip():
                continue
            if status_on:  # cleared beside the first write, not before it (one round trip less)
                status_on, clearing = False, asyncio.create_task(_status(set_status, None))
            attempts = result.attempts
            try:
                await sink.update(text, final=False)
            except StreamUnsupported:
                sink = _EditSink(conv, result)
                await sink.update(text, final=False)
            except MessageGone:
                result.gone = True
                break
            _shown(answer, result)
            if result.attempts != attempts:  # the interval runs from the last write tried (refused
                last = time.monotonic()  # ones too), so a held-back first word delays nothing
        result.text = pump.text
        result.error = pump.error
        result.stopped = answer is not None and answer.stopped
        if status_on:
            await _status(set_status, None)
        if clearing is not None:
            await clearing
        if result.gone:
            log.info("the answer's message was deleted; stopped writing it")
            return result
        final = with_stop_note(result.text) if result.stopped else with_error_note(result.text, result.error)
        if controlled:
            conv.controls = Controls(answer.id, running=False)  # type: ignore[attr-defined, union-attr]
            if isinstance(sink, _EditSink):
                sink.refresh = True
        try:
            await sink.update(final, final=True)
        except StreamUnsupported:
            sink = _EditSink(conv, result)
            sink.refresh = controlled
            await sink.update(final, final=True)
        except MessageGone:
            result.gone = True
            log.info("the answer's message was deleted; stopped writing it")
        _shown(answer, result)
    except asyncio.CancelledError:  # stopped from outside (shutdown): close what was shown
        result.text, result.error = pump.text, ShuttingDown()
        if result.text.strip() and not result.gone:
            try:
                await asyncio.wait_for(sink.update(with_error_note(result.text, result.error), final=True), 10)
            except (Exception, asyncio.CancelledError):
                log.warning("could not close an interrupted answer", exc_info=True)
        raise
    finally:
        if not pump.done:
            pump.task.cancel()
    return result


def _shown(answer: Answer | None, result: Rendered) -> None:
    """Tell the answer its first message, once there is one (reactions name messages)."""
    if answer is not None and answer.message is None and result.message_ids:
        answer.shown(result.message_ids[0])


async def _status(set_status, text: str | None) -> bool:
    try:
        await set_status(text)
        return True
    except Exception:
        log.warning("status update failed", exc_info=True)
        return False
