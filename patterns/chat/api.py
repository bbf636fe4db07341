"""`POST /api/chat/stream`: a chat message answered as Server-Sent Events.

The request becomes an `Incoming` like a DM on a platform named `api` and goes through
the router: the same answerers in the same order (a thread summary, the agent, the
knowledge base, plain chat), the same cache, usage ledger, budgets and error handling;
its replies stream back through `bot.core.sse.SseConversation`.
"""
from __future__ import annotations

import asyncio
import uuid
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from bot.core.api import Api, ApiError, Body
from bot.core.errors import user_message_for
from bot.core.messages import HistoryItem, Incoming, utcnow
from bot.core.settings import LLM_SETUP_HINT
from bot.core.sse import SseConversation


class Turn(Body):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=100_000)


class ChatIn(Body):
    message: str = Field(min_length=1, description="the question or request")
    history: list[Turn] = Field(default_factory=list, max_length=200,
                                description="the conversation so far, oldest first")
    workspace: str | None = Field(default=None, max_length=200,
                                  description="the workspace whose knowledge base may answer (default AIBOT_API_WORKSPACE)")


class ChatDone(BaseModel):
    text: str
    error: str | None


def mount(app: web.Application, host) -> None:
    settings = host.settings

    async def stream(request: web.Request, body: ChatIn) -> web.StreamResponse:
        if len(body.message) > settings.max_message_chars:
            raise ApiError(413, f"`message` is too long ({len(body.message):,} characters; "
                                f"the limit is {settings.max_message_chars:,}, AIBOT_MAX_MESSAGE_CHARS).")
        if not host.services.llm.configured:
            raise ApiError(503, LLM_SETUP_HINT)
        now = utcnow()
        history = [HistoryItem(user="user" if t.role == "user" else settings.bot_name, text=t.content, ts=now,
                               is_bot=t.role == "assistant", id=f"h{i}") for i, t in enumerate(body.history)]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        msg = Incoming(platform="api", tenant=body.workspace or settings.api_workspace,
                       channel="api-" + uuid.uuid4().hex[:12], user="api", user_name="user", text=body.message,
                       id="q", is_dm=True, mentioned=True)
        conv = SseConversation(response, history=history)
        answering = asyncio.ensure_future(host.router.dispatch(msg, conv))
        conv.on_gone = answering.cancel  # a client that leaves stops the model call made for it
        try:
            handled = await answering
        except asyncio.CancelledError:
            if not conv.gone:
                raise
            return response  # the client left: the model call was stopped (the ledger says `cancelled`)
        failed = handled.error or handled.cut
        err = user_message_for(failed) if failed is not None else None
        await conv.send("done", {"text": conv.answer, "error": err})
        await response.write_eof()
        return response

    Api.of(app, settings).route(
        "POST", "/api/chat/stream", stream, body=ChatIn, stream="text/event-stream", tag="chat",
        summary="Answer a message like a DM, streamed as Server-Sent Events (delta, message, edit, done)",
    )
