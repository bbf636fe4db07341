"""`POST /api/ask`: a question answered from a workspace's knowledge base, with its
citations, as JSON. The same retrieval, relevance threshold, prompt, model, usage
ledger (pattern `rag`) as `/ask` in chat and `aibot ask`."""
from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from bot.core.api import Api, ApiError, Body
from bot.core.messages import CallInfo
from patterns.rag.answer import NOT_IN_KB, GroundedAnswers, cited, short

PATTERN = "rag"


class AskIn(Body):
    question: str = Field(min_length=1, max_length=4_000, description="what you want to know")
    workspace: str | None = Field(default=None, max_length=200,
                                  description="whose knowledge base (default AIBOT_API_WORKSPACE; `console` for "
                                              "documents added with `aibot kb add`)")
    channel: str | None = Field(default=None, max_length=200,
                                description="also search documents added to this channel only")


class Citation(BaseModel):
    n: int
    document: str
    document_id: int
    heading: str | None
    page: int | None
    citation: str
    score: float


class AskOut(BaseModel):
    answer: str
    grounded: bool  # false: nothing relevant was found, or no model is configured (then the passages are the answer)
    citations: list[Citation]


def mount(app: web.Application, host, answers: GroundedAnswers) -> None:
    settings = host.settings

    async def ask(request: web.Request, body: AskIn) -> dict:
        question = body.question.strip()
        if not question:
            raise ApiError(400, "`question` is empty: ask something.")
        tenant = body.workspace or settings.api_workspace
        passages = await answers.relevant(tenant=tenant, question=question, channel=body.channel)
        if not passages:
            return AskOut(answer=f"{NOT_IN_KB}: I found nothing relevant to “{short(question)}”.", grounded=False,
                          citations=[]).model_dump()
        if not answers.llm.configured:
            listed = list(range(1, len(passages) + 1))
            return AskOut(answer="No language model is configured; the citations are the best passages.",
                          grounded=False, citations=_citations(passages, listed)).model_dump()
        call = CallInfo(PATTERN, "api", tenant, body.channel or "api", "api")
        used, stream = answers.grounded(question, passages, call=call)
        text = "".join([delta async for delta in stream])
        return AskOut(answer=text, grounded=True, citations=_citations(used, cited(used, text))).model_dump()

    Api.of(app, settings).route("POST", "/api/ask", ask, body=AskIn, response=AskOut, tag="rag",
                                summary="Answer a question from the knowledge base, with citations")


def _citations(passages, numbers: list[int]) -> list[Citation]:
    return [Citation(n=n, document=p.document, document_id=p.document_id, heading=p.heading, page=p.page,
                     citation=p.citation, score=round(p.score, 4))
            for n in numbers for p in [passages[n - 1]]]
