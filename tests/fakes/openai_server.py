"""A fake OpenAI-compatible server on 127.0.0.1 that speaks the real wire protocol.

The real `openai` SDK is pointed at it (`base_url`), so the client, its retries, SSE
parsing and usage chunks are exercised end to end. It runs in its own thread and event
loop, so sync tests, async tests and subprocesses can all use it.

    with FakeOpenAI() as fake:
        fake.enqueue("Hello there!")                        # next chat reply
        fake.enqueue(Script(status=429, retry_after=0.1))   # then a rate limit
        fake.enqueue(Script(tool_calls=[{"name": "calculate", "arguments": {"expression": "2+2"}}]))
        ... OPENAI_BASE_URL=fake.base_url ...
        fake.chat_requests[-1]["messages"]

Endpoints: POST /v1/chat/completions (JSON, or SSE with `stream: true`: role chunk,
content or tool_call deltas, finish chunk, the usage chunk when
`stream_options.include_usage`, then `[DONE]`), POST /v1/embeddings (deterministic
bag-of-words vectors: similar texts get similar vectors), GET /v1/models, and the Batch
API: POST /v1/files, GET /v1/files/{id}[/content], POST /v1/batches, GET /v1/batches/{id}
(a batch answers each line like a chat request and completes after
`batch_polls_to_complete` GETs).

Prompt caching as OpenAI documents it: automatic for prompts of at least 1,024 tokens;
the longest prefix (tools, then messages in order) already seen for the same model is
reported as `usage.prompt_tokens_details.cached_tokens`, counted from 1,024 in steps of
128 tokens (`cache_min_tokens`, `cache_step` change the numbers for small tests).

Run standalone for demos and benchmarks:
    python -m tests.fakes.openai_server --port 8399 --ttft 0.3 --tps 40
"""
from __future__ import annotations

import argparse
import array
import asyncio
import base64
import hashlib
import json
import math
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

_TOKEN = re.compile(r"\s*\S+|\s+")
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class Script:
    """One scripted reply to a chat completion request."""

    text: str = ""
    tool_calls: list[dict] = field(default_factory=list)  # {"name", "arguments": str|dict, "id"?}
    status: int = 200  # 429, 500, 400 ... answer with an error instead
    retry_after: float | None = None  # Retry-After header (seconds) on an error status
    hang: bool = False  # never answer (the client must time out)
    cut_after: int | None = None  # stream: drop the connection after this many content chunks
    ttft: float | None = None  # seconds before the first token (default: the server's)
    tokens_per_second: float | None = None  # pacing of streamed tokens (None: no delay)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    send_finish: bool = True  # stream: False ends the stream cleanly ([DONE]) with no finish_reason
    send_usage: bool = True  # False: no usage in the reply or the stream, as some servers do
    cached_tokens: int | None = None  # override the prompt cache's count for this reply


@dataclass
class Recorded:
    path: str
    body: Any
    headers: dict
    at: float


def tokenize(text: str) -> list[str]:
    """Split text into token-like pieces (a word with its leading space)."""
    return _TOKEN.findall(text)


def embed(text: str, dim: int) -> list[float]:
    """Deterministic hashed bag-of-words embedding, L2-normalised."""
    vec = [0.0] * dim
    for word in _WORD.findall(text.lower()):
        h = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
        idx = int.from_bytes(h[:4], "little") % dim
        vec[idx] += 1.0 if h[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0:  # no words at all: a fixed unit vector
        vec[0] = 1.0
        return vec
    return [v / norm for v in vec]


def _base64(vec: list[float]) -> str:
    return base64.b64encode(array.array("f", vec).tobytes()).decode("ascii")


_DATA_URL = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/]+=*$")


def invalid_content(messages: list) -> str | None:
    """Why the API would refuse these messages' content parts (text and image_url parts,
    images as http(s) or base64 data: URLs, only in user messages), or None."""
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if not isinstance(content, list):
            continue
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                continue
            if kind == "image_url" and m.get("role") == "user":
                url = (part.get("image_url") or {}).get("url") or ""
                if url.startswith(("https://", "http://")) or _DATA_URL.match(url):
                    continue
                return "Invalid image URL: expected a URL or a base64 data: URL of png, jpeg, gif or webp"
            return f"Invalid content part of type {kind!r}"
    return None


def default_responder(body: dict) -> Script:
    """Used when nothing is enqueued: a short deterministic reply naming the request."""
    messages = body.get("messages") or []
    system = next((m.get("content") or "" for m in messages if m.get("role") == "system"), "")
    last = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
    if isinstance(last, list):
        last = " ".join(p.get("text", "") for p in last if isinstance(p, dict))
    words = " ".join(str(last).split()[:12])
    if "summar" in str(system).lower():
        return Script(text=f"Summary: {words}")
    return Script(text=f"Fake answer about: {words}")


class FakeOpenAI:
    def __init__(
        self,
        *,
        ttft: float = 0.0,
        tokens_per_second: float | None = None,
        responder: Callable[[dict], Script | str] | None = None,
        port: int = 0,
        model_ids: tuple[str, ...] = ("gpt-4o-mini", "fake-model"),
    ) -> None:
        self.ttft = ttft
        self.tokens_per_second = tokens_per_second
        self.responder = responder or default_responder
        self.model_ids = model_ids
        self.requests: list[Recorded] = []
        self._queue: deque[Script] = deque()
        self._lock = threading.Lock()
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self.port: int | None = None
        self.files: dict[str, dict] = {}  # Batch API state (issue 7)
        self.batches: dict[str, dict] = {}
        self.batch_polls_to_complete = 1  # GETs of a batch before it reports "completed"
        self.cache_min_tokens = 1024  # OpenAI: prompts shorter than this are never cached
        self.cache_step = 128  # cache hits grow in steps of this many tokens
        self._prefixes: dict[str, set[str]] = {}  # model -> hashes of prompt prefixes at each step

    # --- lifecycle ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "FakeOpenAI":
        self._thread = threading.Thread(target=self._serve, name="fake-openai", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._startup_error is not None:
            raise self._startup_error
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            fut.result(5)
        except Exception:
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:  # reported to start()
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.close()

    async def _startup(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/files", self._file_upload)  # Batch API (issue 7)
        app.router.add_get("/v1/files/{file_id}", self._file_get)
        app.router.add_get("/v1/files/{file_id}/content", self._file_content)
        app.router.add_post("/v1/batches", self._batch_create)
        app.router.add_get("/v1/batches/{batch_id}", self._batch_get)
        self.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def add_routes(self, app: web.Application) -> None:
        """Hook for subclasses that serve more of the API."""

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- scripting ------------------------------------------------------------------

    def enqueue(self, *replies: Script | str) -> None:
        with self._lock:
            for r in replies:
                self._queue.append(Script(text=r) if isinstance(r, str) else r)

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.files.clear()
            self.batches.clear()
            self.batch_polls_to_complete = 1
            self._prefixes.clear()
            self.cache_min_tokens = 1024
            self.cache_step = 128

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    @property
    def chat_requests(self) -> list[dict]:
        return [r.body for r in self.requests if r.path.endswith("/chat/completions")]

    def _prompt_cache(self, body: dict) -> int:
        """Tokens of this prompt's longest prefix seen before (same model), in steps; then
        this prompt's prefixes are remembered for the next request."""
        pieces: list[str] = []
        if body.get("tools"):
            pieces += tokenize(json.dumps(body["tools"], sort_keys=True))
        for m in body["messages"]:
            pieces += [f"<{m.get('role')}>", *tokenize(json.dumps(m.get("content"), ensure_ascii=False)), "</>"]
        seen = self._prefixes.setdefault(str(body.get("model")), set())
        cached = 0
        digest = hashlib.sha256()
        for n in range(self.cache_min_tokens, len(pieces) + 1, self.cache_step):
            start = n - self.cache_step if n > self.cache_min_tokens else 0
            digest.update("".join(pieces[start:n]).encode())
            key = digest.copy().hexdigest()
            if key in seen:
                cached = n
            seen.add(key)
        return cached

    def _next(self, body: dict) -> Script:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        s = self.responder(body)
        return Script(text=s) if isinstance(s, str) else s

    # --- handlers -------------------------------------------------------------------

    async def _record(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        self.requests.append(Recorded(request.path, body, dict(request.headers), time.time()))
        return body

    async def _models(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response(
            {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.model_ids]}
        )

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if not isinstance(body, dict) or "input" not in body:
            return _error(400, "input is required")
        inputs = body["input"]
        if isinstance(inputs, str):
            inputs = [inputs]
        dim = int(body.get("dimensions") or 384)
        as_base64 = body.get("encoding_format") == "base64"  # float32 bytes, as OpenAI sends them (the SDK's default)
        data = [{"object": "embedding", "index": i,
                 "embedding": _base64(embed(str(t), dim)) if as_base64 else embed(str(t), dim)}
                for i, t in enumerate(inputs)]
        n = sum(len(_WORD.findall(str(t))) for t in inputs)
        return web.json_response(
            {"object": "list", "data": data, "model": body.get("model", "fake-embed"), "usage": {"prompt_tokens": n, "total_tokens": n}}
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "messages must be a list")
        problem = invalid_content(body["messages"])
        if problem:
            return _error(400, problem)
        script = self._next(body)
        if script.hang:
            await asyncio.sleep(3600)
        if script.status != 200:
            headers = {}
            if script.retry_after is not None:
                headers["retry-after"] = str(script.retry_after)
            kind = "rate_limit_exceeded" if script.status == 429 else "server_error"
            return _error(script.status, f"scripted {script.status}", kind, headers)
        model = body.get("model", "fake-model")
        prompt_tokens = script.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = sum(len(tokenize(str(m.get("content") or ""))) + 4 for m in body["messages"])
        pieces = tokenize(script.text)
        completion_tokens = script.completion_tokens if script.completion_tokens is not None else len(pieces)
        calls = [_tool_call(i, tc) for i, tc in enumerate(script.tool_calls)]
        finish = script.finish_reason or ("tool_calls" if calls else "stop")
        cached = self._prompt_cache(body)
        if script.cached_tokens is not None:
            cached = script.cached_tokens
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens,
                 "prompt_tokens_details": {"cached_tokens": min(cached, prompt_tokens), "audio_tokens": 0}}
        ttft = self.ttft if script.ttft is None else script.ttft
        tps = script.tokens_per_second if script.tokens_per_second is not None else self.tokens_per_second
        cid = "chatcmpl-" + uuid.uuid4().hex[:12]
        created = int(time.time())
        if not body.get("stream"):
            if ttft:
                await asyncio.sleep(ttft)
            if tps and pieces:
                await asyncio.sleep(len(pieces) / tps)
            message: dict[str, Any] = {"role": "assistant", "content": script.text if script.text or not calls else None}
            if calls:
                message["tool_calls"] = calls
            return web.json_response({
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                **({"usage": usage} if script.send_usage else {}),
            })

        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)

        def chunk(delta: dict, finish_reason: str | None = None, with_usage: dict | None = None, choices: bool = True) -> bytes:
            obj: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}] if choices else []}
            if with_usage is not None:
                obj["usage"] = with_usage
            return f"data: {json.dumps(obj)}\n\n".encode()

        if ttft:
            await asyncio.sleep(ttft)
        await resp.write(chunk({"role": "assistant", "content": ""}))
        sent = 0
        for piece in pieces:
            if script.cut_after is not None and sent >= script.cut_after:
                request.transport.close()  # drop the connection mid-stream, no [DONE]
                return resp
            await resp.write(chunk({"content": piece}))
            sent += 1
            if tps:
                await asyncio.sleep(1 / tps)
        if script.cut_after is not None and sent >= script.cut_after:
            request.transport.close()
            return resp
        for i, call in enumerate(calls):
            args = call["function"]["arguments"]
            half = len(args) // 2
            await resp.write(chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                                    "function": {"name": call["function"]["name"], "arguments": args[:half]}}]}))
            await resp.write(chunk({"tool_calls": [{"index": i, "function": {"arguments": args[half:]}}]}))
        if script.send_finish:
            await resp.write(chunk({}, finish))
        if script.send_usage and (body.get("stream_options") or {}).get("include_usage"):
            await resp.write(chunk({}, with_usage=usage, choices=False))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


    # --- Batch API: files + batches (completes after `batch_polls_to_complete` GETs) --

    def _new_file(self, name: str, purpose: str, content: bytes) -> dict:
        fid = "file-" + uuid.uuid4().hex[:16]
        self.files[fid] = {"id": fid, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                           "filename": name, "purpose": purpose, "status": "processed", "content": content}
        return self.files[fid]

    @staticmethod
    def _public(obj: dict) -> dict:
        return {k: v for k, v in obj.items() if k not in ("content", "_polls")}

    async def _file_upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload, purpose = form.get("file"), form.get("purpose")
        self.requests.append(Recorded(request.path, {"purpose": purpose}, dict(request.headers), time.time()))
        if upload is None or not hasattr(upload, "file") or not purpose:
            return _error(400, "file and purpose are required")
        return web.json_response(self._public(self._new_file(upload.filename, str(purpose), upload.file.read())))

    async def _file_get(self, request: web.Request) -> web.Response:
        f = self.files.get(request.match_info["file_id"])
        return web.json_response(self._public(f)) if f else _error(404, "no such file")

    async def _file_content(self, request: web.Request) -> web.Response:
        self.requests.append(Recorded(request.path, None, dict(request.headers), time.time()))
        f = self.files.get(request.match_info["file_id"])
        if f is None:
            return _error(404, "no such file")
        return web.Response(body=f["content"], content_type="application/octet-stream")

    async def _batch_create(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if not isinstance(body, dict) or body.get("input_file_id") not in self.files:
            return _error(400, "input_file_id must name an uploaded file")
        if body.get("endpoint") != "/v1/chat/completions" or body.get("completion_window") != "24h":
            return _error(400, "endpoint must be /v1/chat/completions and completion_window 24h")
        bid = "batch_" + uuid.uuid4().hex[:16]
        lines = self.files[body["input_file_id"]]["content"].decode().splitlines()
        self.batches[bid] = {
            "id": bid, "object": "batch", "endpoint": body["endpoint"], "errors": None,
            "input_file_id": body["input_file_id"], "completion_window": "24h", "status": "validating",
            "output_file_id": None, "error_file_id": None, "created_at": int(time.time()),
            "request_counts": {"total": len([x for x in lines if x.strip()]), "completed": 0, "failed": 0},
            "metadata": body.get("metadata"), "_polls": 0,
        }
        return web.json_response(self._public(self.batches[bid]))

    async def _batch_get(self, request: web.Request) -> web.Response:
        self.requests.append(Recorded(request.path, None, dict(request.headers), time.time()))
        b = self.batches.get(request.match_info["batch_id"])
        if b is None:
            return _error(404, "no such batch")
        b["_polls"] += 1
        if b["status"] != "completed" and b["_polls"] >= self.batch_polls_to_complete:
            self._run_batch(b)
        elif b["status"] == "validating":
            b["status"] = "in_progress"
        return web.json_response(self._public(b))

    def _run_batch(self, b: dict) -> None:
        out, errors = [], []
        for line in self.files[b["input_file_id"]]["content"].decode().splitlines():
            if not line.strip():
                continue
            req = json.loads(line)
            body = req["body"]
            script = self._next(body)
            rid = "req_" + uuid.uuid4().hex[:12]
            if script.status != 200:
                errors.append({"id": "batch_req_" + rid, "custom_id": req["custom_id"], "response": {
                    "status_code": script.status, "request_id": rid, "body": {"error": {"message": "scripted", "code": "server_error"}}},
                    "error": None})
                continue
            pt = script.prompt_tokens or sum(len(tokenize(str(m.get("content") or ""))) + 4 for m in body["messages"])
            ct = script.completion_tokens or len(tokenize(script.text))
            out.append({"id": "batch_req_" + rid, "custom_id": req["custom_id"], "error": None, "response": {
                "status_code": 200, "request_id": rid, "body": {
                    "id": "chatcmpl-" + rid, "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model", "fake-model"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": script.text}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}}}})
        b["status"] = "completed"
        b["request_counts"].update(completed=len(out), failed=len(errors))
        if out:
            b["output_file_id"] = self._new_file("output.jsonl", "batch_output",
                                                 ("\n".join(json.dumps(o) for o in out) + "\n").encode())["id"]
        if errors:
            b["error_file_id"] = self._new_file("errors.jsonl", "batch_output",
                                                ("\n".join(json.dumps(o) for o in errors) + "\n").encode())["id"]


def _tool_call(i: int, tc: dict) -> dict:
    args = tc.get("arguments", {})
    if not isinstance(args, str):
        args = json.dumps(args)
    return {"id": tc.get("id") or f"call_{i}_{uuid.uuid4().hex[:6]}", "type": "function",
            "function": {"name": tc["name"], "arguments": args}}


def _error(status: int, message: str, kind: str = "invalid_request_error", headers: dict | None = None) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": None, "code": kind}}, status=status, headers=headers or {}
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible server for demos and benchmarks.")
    parser.add_argument("--port", type=int, default=8399)
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds before the first token")
    parser.add_argument("--tps", type=float, default=None, help="streamed tokens per second")
    args = parser.parse_args()
    fake = FakeOpenAI(port=args.port, ttft=args.ttft, tokens_per_second=args.tps).start()
    print(f"fake OpenAI server on {fake.base_url} (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
