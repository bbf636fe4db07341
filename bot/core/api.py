"""The HTTP API's common parts: bearer-token auth, JSON bodies validated by pydantic
models, one clear error message per bad request, and the OpenAPI document the routes
describe themselves in.

A pattern adds its routes in its `api.py` with `Api.route`:

    api = Api.of(app, settings)
    api.route("POST", "/api/summarize", handler, summary="...", body=SummarizeIn, response=SummarizeOut)

`handler(request, body)` returns a `web.StreamResponse` (or a dict, sent as JSON). Without
AIBOT_API_TOKEN every route answers 503 saying so; a missing or wrong token gets 401; a
body too large 413; a body that is not the declared JSON 400 naming the field and the
problem; a `UserError` 400 with its message; anything else 500 with an apology (the
details go to the log). Every request runs under its own request id (`bot.core.logs`).
"""
from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from bot.core import logs
from bot.core.errors import LLMError, UserError, user_message_for

log = logging.getLogger(__name__)

OFF = "The HTTP API is off: set AIBOT_API_TOKEN to enable it."
WRONG_TOKEN = "Missing or wrong token: send `Authorization: Bearer <AIBOT_API_TOKEN>`."
MAX_BODY = 4 * 1024 * 1024  # bytes of JSON; a route may allow more
OPENAPI_PATH = "/api/openapi.json"

Handler = Callable[..., Awaitable[Any]]


class Body(BaseModel):
    """Base of request bodies: unknown fields and wrong types are refused, not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ApiError(Exception):
    """An HTTP error with one message for the caller."""

    def __init__(self, status: int, message: str, *, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error(status: int, message: str, headers: dict | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    summary: str
    body: type[BaseModel] | None
    response: type[BaseModel] | None
    stream: str | None  # media type of a streamed response (text/event-stream)
    tag: str


class Api:
    """The API routes on one aiohttp application (one per app, `Api.of`)."""

    KEY = web.AppKey("aibot_api", object)

    def __init__(self, app: web.Application, *, tokens: Callable[[], Iterable[SecretStr | None]]) -> None:
        self.app = app
        self._tokens = tokens
        self.endpoints: list[Endpoint] = []
        app.router.add_get(OPENAPI_PATH, self._openapi)

    @classmethod
    def of(cls, app: web.Application, settings) -> "Api":
        """The app's Api, created on first use with the core settings' token."""
        found = app.get(cls.KEY)
        if found is None:
            found = cls(app, tokens=lambda: (settings.api_token,))
            app[cls.KEY] = found
        return found

    def also_accept(self, tokens: Callable[[], Iterable[SecretStr | None]]) -> None:
        """More tokens that open the API (the batch API's older AIBOT_BATCH_TOKEN)."""
        first = self._tokens
        self._tokens = lambda: (*first(), *tokens())

    # --- auth -----------------------------------------------------------------------

    def secrets(self) -> list[str]:
        """The configured tokens' values (for a sign-in that derives from them)."""
        return [t.get_secret_value() for t in self._tokens() if t is not None]

    def configured(self) -> bool:
        return any(t is not None for t in self._tokens())

    def allows(self, sent: str) -> bool:
        """`sent` (a bearer token) is one of the configured tokens (constant-time)."""
        ok = False
        for token in self._tokens():
            if token is not None:
                ok |= hmac.compare_digest(sent.encode(), token.get_secret_value().encode())
        return ok

    def check(self, request: web.Request) -> None:
        if not self.configured():
            raise ApiError(503, OFF)
        scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self.allows(sent.strip()):
            raise ApiError(401, WRONG_TOKEN, headers={"WWW-Authenticate": 'Bearer realm="aibot"'})

    # --- routes ---------------------------------------------------------------------

    def route(self, method: str, path: str, handler: Handler, *, summary: str, body: type[BaseModel] | None = None,
              response: type[BaseModel] | None = None, stream: str | None = None, tag: str = "",
              max_body: int = MAX_BODY, doc_body: type[BaseModel] | None = None) -> None:
        """Add a protected route and describe it in the OpenAPI document (`doc_body`: the
        body's schema for a handler that reads the body itself)."""
        self.endpoints.append(Endpoint(method.upper(), path, summary, body or doc_body, response, stream, tag))

        async def serve(request: web.Request) -> web.StreamResponse:
            with logs.request_scope("api"):
                try:
                    self.check(request)
                    args = [await read_body(request, body, max_bytes=max_body)] if body is not None else []
                    result = await handler(request, *args)
                except ApiError as exc:
                    return error(exc.status, exc.message, exc.headers)
                except UserError as exc:
                    return error(400, exc.user_message)
                except LLMError as exc:
                    return error(429 if exc.kind == "rate_limited" else 502, exc.user_message)
                except Exception:
                    log.exception("API %s %s failed", method, path)
                    return error(500, user_message_for(Exception()))
                if isinstance(result, web.StreamResponse):
                    return result
                return web.json_response(result)

        self.app.router.add_route(method.upper(), path, serve)

    async def _openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi(self.endpoints))


async def read_body(request: web.Request, model: type[BaseModel], *, max_bytes: int) -> BaseModel:
    """The JSON body as `model`; ApiError 413/400/415 with one clear message otherwise."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, f"The body is too large ({request.content_length:,} bytes; the limit is {max_bytes:,}).")
    raw = await request.content.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise ApiError(413, f"The body is too large (more than {max_bytes:,} bytes).")
    if request.content_type not in ("application/json", "application/octet-stream", ""):
        raise ApiError(415, f"Send JSON (Content-Type: application/json), not {request.content_type}.")
    try:
        data = json.loads(raw or b"null")
    except ValueError:
        raise ApiError(400, "The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"Send a JSON object with {_fields(model)}.")
    try:
        return model.model_validate_json(raw)  # strict in JSON terms: "3" is not an int, 3 is
    except ValidationError as exc:
        raise ApiError(400, _problem(exc)) from None


def _fields(model: type[BaseModel]) -> str:
    return ", ".join(f"`{n}`" for n in model.model_fields)


def _problem(exc: ValidationError) -> str:
    """The first problem, naming the field: "`text`: Input should be a valid string"."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "body"
    if err.get("type") == "extra_forbidden":
        return f"`{where}` is not a field of this request."
    if err.get("type") == "missing":
        return f"`{where}` is required."
    more = f" (and {len(exc.errors()) - 1} more problem{'s' if len(exc.errors()) > 2 else ''})" if len(exc.errors()) > 1 else ""
    return f"`{where}`: {err['msg']}{more}."


def openapi(endpoints: list[Endpoint]) -> dict:
    """The OpenAPI 3.1 document of the registered routes (schemas from the pydantic models)."""
    paths: dict[str, dict] = {}
    schemas: dict[str, Any] = {"Error": {"type": "object", "properties": {"error": {"type": "string"}},
                                         "required": ["error"]}}

    def ref(model: type[BaseModel]) -> dict:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    err = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for ep in endpoints:
        op: dict[str, Any] = {"summary": ep.summary, "security": [{"bearer": []}], "responses": {
            "400": {"description": "bad input", **err}, "401": {"description": "missing or wrong token", **err},
            "413": {"description": "body too large", **err}, "503": {"description": "API off (no token set)", **err}}}
        if ep.tag:
            op["tags"] = [ep.tag]
        params = [p.strip("{}") for p in ep.path.split("/") if p.startswith("{")]
        if params:
            op["parameters"] = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params]
        if ep.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(ep.body)}}}
        if ep.stream:
            op["responses"]["200"] = {"description": "a stream of Server-Sent Events",
                                      "content": {ep.stream: {"schema": {"type": "string"}}}}
        elif ep.response is not None:
            op["responses"]["200"] = {"description": "ok", "content": {"application/json": {"schema": ref(ep.response)}}}
        else:
            op["responses"]["200"] = {"description": "ok"}
        paths.setdefault(ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "aibot HTTP API", "version": "1",
                 "description": "Summaries, streamed chat, knowledge-base answers and bulk jobs. "
                                "Send `Authorization: Bearer <AIBOT_API_TOKEN>`."},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
