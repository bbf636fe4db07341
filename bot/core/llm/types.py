"""What a model call takes and gives: per-call options, a completion, its tool calls."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict


class ChatOptions(BaseModel):
    """Per-call options; unknown keys are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None  # default: AIBOT_CHAT_MODEL
    temperature: float | None = None
    max_tokens: int | None = None
    tools: list[dict] | None = None
    tool_choice: str | dict | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict | None = None
    stop: list[str] | None = None
    seed: int | None = None


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text as the model wrote it; may be malformed

    def as_message_part(self) -> dict:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass
class Completion:
    text: str
    model: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    cached_tokens: int = 0  # prompt tokens the provider served from its prompt cache

    def assistant_message(self) -> dict:
        """This completion as an assistant message, to continue a conversation."""
        msg: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            msg["tool_calls"] = [tc.as_message_part() for tc in self.tool_calls]
        return msg
