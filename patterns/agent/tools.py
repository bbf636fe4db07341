"""Agent tools as plain typed functions: the JSON schema the model sees comes from the
signature and the docstring, the arguments the model sends are validated against it.

    @tool(step="calculating {expression}")
    async def calculate(run: Run, expression: str) -> str:
        '''Evaluate an arithmetic expression.

        expression: e.g. "(1200 - 1000) / 1000 * 100"
        '''

The first parameter (the run: tenant, conversation, services) is never shown to the
model. A tool returns text for the model; whatever goes wrong becomes a result starting
with "error:" that the model reads, never an exception out of the loop.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

from pydantic import ConfigDict, ValidationError, create_model

from bot.core.commands import param_docs

log = logging.getLogger(__name__)

MAX_RESULT_CHARS = 6_000  # what one tool result may put into the model's context


class ToolError(Exception):
    """A failure the model should read (bad arguments, refused query); shown as is."""


@dataclass(frozen=True)
class Tool:
    name: str
    fn: Callable[..., Awaitable[str]]
    description: str
    schema: dict
    step: str | Callable[[dict], str]  # the status line: a template like "calculating {expression}", or a function
    args_model: type

    def spec(self) -> dict:
        """The `tools` entry of a chat completion request."""
        return {"type": "function", "function": {"name": self.name, "description": self.description, "parameters": self.schema}}

    def parse(self, arguments: str) -> dict:
        """The model's JSON arguments, validated; ToolError with a readable reason otherwise."""
        try:
            raw = json.loads(arguments) if arguments.strip() else {}
        except ValueError as exc:
            raise ToolError(f"the arguments were not valid JSON ({exc.msg} at position {exc.pos}); send a JSON object") from None
        if not isinstance(raw, dict):
            raise ToolError("the arguments must be a JSON object")
        try:
            return self.args_model.model_validate(raw).model_dump()
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors())
            raise ToolError(f"invalid arguments: {problems}") from None

    def status(self, args: dict) -> str:
        if callable(self.step):
            return self.step(args)
        shown = {k: _short(v) for k, v in args.items()}
        try:
            return self.step.format(**shown)
        except (KeyError, IndexError, ValueError):
            return self.step

    async def invoke(self, run: Any, args: dict, *, timeout: float) -> str:
        """Run the tool; every outcome is text for the model."""
        try:
            async with asyncio.timeout(timeout):
                out = await self.fn(run, **args)
        except ToolError as exc:
            return f"error: {exc}"
        except TimeoutError:
            return f"error: the tool took longer than {timeout:g} s and was stopped"
        except Exception:
            log.exception("agent tool %s failed", self.name)
            return "error: the tool failed unexpectedly; try something else"
        return clip(str(out))


def tool(*, step: str | Callable[[dict], str], name: str | None = None) -> Callable[[Callable], Tool]:
    """Turn a typed async function `(run, **params) -> str` into a Tool."""

    def wrap(fn: Callable) -> Tool:
        description, params = param_docs(fn)
        hints = get_type_hints(fn)
        fields: dict[str, Any] = {}
        for i, (pname, p) in enumerate(inspect.signature(fn).parameters.items()):
            if i == 0:
                continue  # the run context
            default = ... if p.default is inspect.Parameter.empty else p.default
            fields[pname] = (hints.get(pname, str), default)
        model = create_model(f"{fn.__name__}_args", __config__=ConfigDict(extra="forbid"), **fields)
        schema = _clean(model.model_json_schema())
        for pname, text in params.items():
            if pname in schema.get("properties", {}):
                schema["properties"][pname]["description"] = text
        schema.setdefault("properties", {})
        schema["additionalProperties"] = False
        return Tool(name or fn.__name__, fn, description, schema, step, model)

    return wrap


def _clean(schema: dict) -> dict:
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return schema


def _short(value: Any, limit: int = 80) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clip(text: str, limit: int = MAX_RESULT_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… (cut: {len(text) - limit:,} more characters)"
