"""`POST /api/summarize`: the summary of a text, as JSON. The same map-reduce summarizer,
model (AIBOT_FAST_MODEL), cache and usage ledger (pattern `api_wrapper`) as `/summarize`
of a text in chat and `aibot summarize`."""
from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from bot.core.api import Api, ApiError, Body
from bot.core.messages import CallInfo
from bot.core.summarizer import TEXT_PROMPT, summarize
from bot.core.settings import LLM_SETUP_HINT

PATTERN = "api_wrapper"


class SummarizeIn(Body):
    text: str = Field(min_length=1, description="the text to summarize (at most AIBOT_MAX_SUMMARIZE_CHARS)")
    instruction: str | None = Field(default=None, max_length=4_000,
                                    description="what to do with it instead of the default summary")
    workspace: str | None = Field(default=None, max_length=200,
                                  description="recorded in the usage ledger (default AIBOT_API_WORKSPACE)")


class SummarizeOut(BaseModel):
    summary: str
    model: str
    characters: int


def mount(app: web.Application, host) -> None:
    settings = host.settings

    async def handle(request: web.Request, body: SummarizeIn) -> dict:
        limit = settings.max_summarize_chars
        if len(body.text) > limit:
            raise ApiError(413, f"`text` is too long ({len(body.text):,} characters; the limit is {limit:,}, "
                                "AIBOT_MAX_SUMMARIZE_CHARS).")
        if not body.text.strip():
            raise ApiError(400, "`text` is empty: send the text to summarize.")
        if not host.services.llm.configured:
            raise ApiError(503, LLM_SETUP_HINT)
        call = CallInfo(PATTERN, "api", body.workspace or settings.api_workspace, "api", "api")
        summary = await summarize(host.services.llm, body.text, call=call, budget_tokens=settings.context_tokens,
                                  model=settings.fast_model, instruction=body.instruction or TEXT_PROMPT)
        return SummarizeOut(summary=summary, model=settings.fast_model, characters=len(body.text)).model_dump()

    # the text may be up to AIBOT_MAX_SUMMARIZE_CHARS characters, JSON-escaped (up to 6 bytes each)
    Api.of(app, settings).route(
        "POST", "/api/summarize", handle, body=SummarizeIn, response=SummarizeOut, tag="summarize",
        summary="Summarize a text", max_body=settings.max_summarize_chars * 6 + 64_000,
    )
