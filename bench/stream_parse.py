"""CPU per streamed token: the openai SDK's typed stream vs the raw-body reader the bot
uses (`bot.core.llm.sse`), both folded into text by `StreamAccumulator`-style code.

The fake model (tests/fakes/openai_server.py) runs in its own process and sends
`--tokens` tokens per answer as fast as it can; this process's CPU time (not wall time)
is divided by the tokens read. Rounds alternate the two readers; medians are reported.

    .venv/bin/python bench/stream_parse.py [--rounds 5] [--streams 20] [--tokens 200]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import openai  # noqa: E402

from bench.load_slack import ModelProcess  # noqa: E402
from bot.core.llm import sse  # noqa: E402
from bot.core.llm.chunks import StreamAccumulator  # noqa: E402

PARAMS = {"model": "fake-model", "messages": [{"role": "user", "content": "go"}]}


async def sdk(client: openai.AsyncOpenAI) -> int:
    """The SDK's own stream: a ChatCompletionChunk per token."""
    stream = await client.chat.completions.create(**PARAMS, stream=True, stream_options={"include_usage": True})
    n = 0
    async for chunk in stream:
        for choice in chunk.choices:
            if choice.delta and choice.delta.content:
                n += 1
    return n


async def raw(client: openai.AsyncOpenAI) -> int:
    """The bot's reader: the raw body through `with_streaming_response`, JSON dicts."""
    acc = StreamAccumulator()
    async with sse.open_chunks(client, PARAMS) as response:
        async for chunk in sse.chunks(response):
            for _ in acc.fold(chunk):
                pass
    return len(acc.parts)


async def main(args) -> None:
    model = ModelProcess(ttft=0.0, tps=0.0, tokens=args.tokens)
    client = openai.AsyncOpenAI(api_key="bench", base_url=model.base_url)
    results: dict[str, list[float]] = {"sdk": [], "raw": []}
    try:
        for reader in (sdk, raw):  # warm both paths
            await reader(client)
        for _ in range(args.rounds):
            for name, reader in (("sdk", sdk), ("raw", raw)):
                cpu0, tokens = time.process_time(), 0
                for _ in range(args.streams):
                    tokens += await reader(client)
                results[name].append((time.process_time() - cpu0) / tokens * 1e6)
    finally:
        await client.close()
        model.stop()
    s, r = statistics.median(results["sdk"]), statistics.median(results["raw"])
    print(f"CPU per token, median of {args.rounds} rounds x {args.streams} streams x {args.tokens} tokens:")
    print(f"  openai SDK stream (typed chunks): {s:.1f} µs")
    print(f"  raw body + json.loads (the bot):  {r:.1f} µs  ({s / r:.2f}x less)")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--streams", type=int, default=20)
    p.add_argument("--tokens", type=int, default=200)
    asyncio.run(main(p.parse_args()))
