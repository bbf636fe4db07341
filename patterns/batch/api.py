"""The bulk-job HTTP API on the bot's HTTP server, protected by a bearer token.

    POST /api/batch        {"items": [{"id", "text", "instruction"}, ...], "mode": "direct"|"provider"}
                           (or a JSON Lines body) -> 202 {"job_id", "status", "total"}
    GET  /api/batch/{id}   -> status, counts, and results when done

Without AIBOT_BATCH_TOKEN the API is off and answers 503 saying so; a missing or wrong
token gets 401. Bad input gets 400 with every problem listed, and nothing is created.
"""
from __future__ import annotations

import hmac
import json
import logging

from aiohttp import web

from bot.core.errors import UserError
from patterns.batch.jobs import JobStore, parse_jsonl, validate
from patterns.batch.settings import BatchSettings

log = logging.getLogger(__name__)

OFF = "The batch API is off: set AIBOT_BATCH_TOKEN to enable it."


def mount(app: web.Application, services, settings: BatchSettings, *, wake=lambda: None) -> None:
    core = services.settings
    jobs = JobStore(services.db)

    def refuse(request: web.Request) -> web.Response | None:
        if settings.token is None:
            return web.json_response({"error": OFF}, status=503)
        sent = request.headers.get("Authorization", "")
        want = "Bearer " + settings.token.get_secret_value()
        if not hmac.compare_digest(sent.encode(), want.encode()):
            return web.json_response(
                {"error": "missing or wrong token: send Authorization: Bearer <AIBOT_BATCH_TOKEN>"},
                status=401, headers={"WWW-Authenticate": 'Bearer realm="aibot-batch"'},
            )
        return None

    async def submit(request: web.Request) -> web.Response:
        if (denied := refuse(request)) is not None:
            return denied
        raw = await request.read()
        limits = dict(max_items=settings.max_items, max_chars=core.max_summarize_chars)
        mode = request.query.get("mode", "direct")
        try:
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
        except UserError as exc:
            return web.json_response({"error": exc.user_message}, status=400)
        wake()
        return web.json_response({"job_id": job_id, "status": "queued", "total": len(items)}, status=202)

    async def status(request: web.Request) -> web.Response:
        if (denied := refuse(request)) is not None:
            return denied
        found = await jobs.status(request.match_info["job_id"])
        if found is None:
            return web.json_response({"error": "no such job"}, status=404)
        return web.json_response(found)

    app.router.add_post("/api/batch", submit)
    app.router.add_get("/api/batch/{job_id}", status)
