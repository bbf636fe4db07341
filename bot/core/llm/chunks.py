"""Reading the model's answers: a completion's first choice, and a stream's chunks folded
into text, tool calls, usage and finish reason."""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from bot.core.llm.bookkeeping import Tokens
from bot.core.llm.types import Completion, ToolCall

if TYPE_CHECKING:  # the SDK is imported by the client when it makes its first call
    from openai.types import CompletionUsage
    from openai.types.chat import ChatCompletion


def first_choice(resp: ChatCompletion, model: str) -> Completion:
    """The response's first choice; token counts are the caller's to fill in."""
    choice = resp.choices[0] if resp.choices else None
    msg = choice.message if choice else None
    return Completion(
        text=(msg.content or "") if msg else "",
        model=model,
        tool_calls=tool_calls_of(msg.tool_calls if msg else None),
        finish_reason=choice.finish_reason if choice else None,
    )


def tool_calls_of(parts: list | None) -> list[ToolCall]:
    """The function calls among a message's tool calls; `call_{i}` where the server sent no id."""
    return [
        ToolCall(id=tc.id or f"call_{i}", name=tc.function.name, arguments=tc.function.arguments or "")
        for i, tc in enumerate(parts or [])
        if getattr(tc, "function", None) is not None
    ]


class StreamAccumulator:
    """Folds streamed chunks into the text so far, tool calls by index, the usage chunk
    and the finish reason, and notes the time of the first content or tool-call delta."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.calls: dict[int, dict] = {}
        self.usage: CompletionUsage | None = None
        self.finish: str | None = None
        self.ttft: float | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def fold(self, chunk: dict) -> Iterator[str]:
        """Fold in one chunk (the JSON of a `chat.completion.chunk`), yielding each text
        delta as soon as it is folded (a reader that stops at a delta leaves the rest of
        the chunk unread, as it would the stream)."""
        usage = chunk.get("usage")
        if usage:
            from openai.types import CompletionUsage

            self.usage = CompletionUsage.model_construct(**usage)
        for choice in chunk.get("choices") or ():
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
            delta = choice.get("delta")
            if not delta:
                continue
            for tc in delta.get("tool_calls") or ():
                self._fold_tool_call(tc)
            content = delta.get("content")
            if content:
                self._first_token()
                self.parts.append(content)
                yield content

    def _fold_tool_call(self, tc: dict) -> None:
        self._first_token()
        slot = self.calls.setdefault(tc.get("index") or 0, {"id": "", "name": "", "arguments": ""})
        if tc.get("id"):
            slot["id"] = tc["id"]
        function = tc.get("function")
        if function:
            slot["name"] += function.get("name") or ""
            slot["arguments"] += function.get("arguments") or ""

    def _first_token(self) -> None:
        if self.ttft is None:
            self.ttft = time.perf_counter()

    def completion(self, model: str, used: Tokens) -> Completion:
        return Completion(
            text=self.text, model=model, finish_reason=self.finish,
            prompt_tokens=used.prompt, completion_tokens=used.completion, cached_tokens=used.cached,
            tool_calls=[
                ToolCall(id=c["id"] or f"call_{i}", name=c["name"], arguments=c["arguments"])
                for i, c in sorted(self.calls.items())
            ],
        )
