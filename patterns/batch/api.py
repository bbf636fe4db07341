"""The bulk-job HTTP API on the bot's HTTP server (`bot.core.api`: bearer token, clear
errors, described in `/api/openapi.json`).

    POST /api/batch                  {"items": [{"id", "text", "instruction"}, ...], "mode": "direct"|"provider"}
                                     (or a JSON Lines body) -> 202 {"job_id", "status", "total"}
    GET  /api/batch                  -> {"jobs": [...]} newest first (`?status=`, `?limit=`)
    GET  /api/batch/{id}             -> status, counts, and results when done
    POST /api/batch/{id}/cancel      -> the job, cancelled: items not yet processed are never sent

The token is AIBOT_API_TOKEN (AIBOT_BATCH_TOKEN, its older name for this API, works too);
without one the API is off and answers 503 saying so; a missing or wrong token gets 401.
Bad input gets 400 with every problem listed, and nothing is created.
"""
from __future__ import annotations

import json
import logging
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from bot.core.api import Api, ApiError
from bot.core.errors import UserError
from patterns.batch.jobs import JobStore, parse_jsonl, validate
from patterns.batch.settings import BatchSettings

log = logging.getLogger(__name__)

STATUSES = ("queued", "running", "done", "cancelled")


class ItemIn(BaseModel):
    id: str
    text: str
    instruction: str | None = None


class BatchIn(BaseModel):
    items: list[ItemIn]
    mode: Literal["direct", "provider"] = "direct"


class Submitted(BaseModel):
    job_id: str
    status: str
    total: int


class JobOut(BaseModel):
    job_id: str
    status: str
    mode: str
    model: str
    total: int
    counts: dict[str, int] = Field(default_factory=dict)
    created_at: str
    finished_at: str | None
    results: list[dict] | None = None


class JobList(BaseModel):
    jobs: list[dict]


def mount(app: web.Application, services, settings: BatchSettings, *, wake=lambda: None) -> None:
    core = services.settings
    jobs = JobStore(services.db)
    api = Api.of(app, core)
    api.also_accept(lambda: (settings.token,))

    async def submit(request: web.Request) -> web.Response:
        raw = await request.read()
        limits = dict(max_items=settings.max_items, max_chars=core.max_summarize_chars)
        mode = request.query.get("mode", "direct")
        if request.content_type in ("application/x-ndjson", "application/jsonl", "text/plain"):
            items = parse_jsonl(raw, **limits)
        else:
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                raise UserError("The body is not valid JSON; send {\"items\": [{\"id\", \"text\", \"instruction\"}, ...]}.") from None
            if not isinstance(body, dict) or not isinstance(body.get("items"), list):
                raise UserError("Send a JSON object with an `items` list: {\"items\": [{\"id\", \"text\", \"instruction\"}, ...]}.")
            mode = body.get("mode", mode)
            items = validate([(f"item {i}", o) for i, o in enumerate(body["items"])], **limits)
        job_id = await jobs.create(items, model=core.fast_model, mode=str(mode)[:20], source="http")
        wake()
        return web.json_response({"job_id": job_id, "status": "queued", "total": len(items)}, status=202)

    async def listing(request: web.Request) -> dict:
        status = request.query.get("status") or None
        if status is not None and status not in STATUSES:
            raise ApiError(400, f"`status` must be one of {', '.join(STATUSES)}.")
        raw_limit = request.query.get("limit", "50")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 500:
            raise ApiError(400, "`limit` must be a whole number from 1 to 500.")
        return {"jobs": await jobs.recent(limit=int(raw_limit), status=status)}

    async def status(request: web.Request) -> dict:
        found = await jobs.status(request.match_info["job_id"])
        if found is None:
            raise ApiError(404, "There is no such job.")
        return found

    async def cancel(request: web.Request) -> dict:
        job_id = request.match_info["job_id"]
        before = await jobs.cancel(job_id)
        if before is None:
            raise ApiError(404, "There is no such job.")
        if before == "done":
            raise ApiError(409, "The job is already done; there is nothing left to cancel.")
        return await jobs.status(job_id)

    api.route("POST", "/api/batch", submit, response=Submitted, tag="batch", doc_body=BatchIn,
              summary="Submit a bulk summarize job (JSON, or JSON Lines with Content-Type application/x-ndjson)")
    api.route("GET", "/api/batch", listing, response=JobList, tag="batch", summary="List jobs, newest first")
    api.route("GET", "/api/batch/{job_id}", status, response=JobOut, tag="batch",
              summary="A job's status, counts and (when done) results")
    api.route("POST", "/api/batch/{job_id}/cancel", cancel, response=JobOut, tag="batch",
              summary="Cancel a job: items not processed yet are never sent")
