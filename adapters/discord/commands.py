"""The bot's application commands, registered through discord.py's CommandTree.

Each command only turns its options into the text the core's command handler reads
(`/kb search refunds` -> command "kb", text "search refunds") and hands the interaction to
`handle`, which defers at once and routes it. No logic of the commands lives here.
"""
# No `from __future__ import annotations`: discord.py reads these signatures at runtime.
from typing import Awaitable, Callable, Literal, Optional

import discord
from discord import app_commands

Handle = Callable[[discord.Interaction, str, str, list], Awaitable[None]]


def build_tree(client: discord.Client, handle: Handle) -> app_commands.CommandTree:
    tree = app_commands.CommandTree(client)

    @tree.command(name="summarize", description="Summarize this channel or thread, the last hours (4h), or the text you give")
    @app_commands.describe(what="a time window like 4h or 2d, or the text to summarize; empty: the recent messages")
    async def summarize(interaction: discord.Interaction, what: Optional[str] = None) -> None:
        await handle(interaction, "summarize", what or "", [])

    @tree.command(name="ask", description="Ask a question (answered from the knowledge base when it can)")
    @app_commands.describe(question="what you want to know")
    async def ask(interaction: discord.Interaction, question: str) -> None:
        await handle(interaction, "ask", question, [])

    kb = app_commands.Group(name="kb", description="The knowledge base")

    @kb.command(name="list", description="List the documents in the knowledge base")
    async def kb_list(interaction: discord.Interaction) -> None:
        await handle(interaction, "kb", "list", [])

    @kb.command(name="search", description="Search the knowledge base")
    @app_commands.describe(query="what to look for")
    async def kb_search(interaction: discord.Interaction, query: str) -> None:
        await handle(interaction, "kb", f"search {query}", [])

    @kb.command(name="remove", description="Remove a document from the knowledge base")
    @app_commands.describe(document="the document's id or name, as /kb list shows it")
    async def kb_remove(interaction: discord.Interaction, document: str) -> None:
        await handle(interaction, "kb", f"remove {document}", [])

    @kb.command(name="add", description="Add a file or pasted text to the knowledge base")
    @app_commands.describe(file="a text, Markdown, PDF, Word or HTML file", text="text to add (named after its first line)")
    async def kb_add(interaction: discord.Interaction, file: Optional[discord.Attachment] = None,
                     text: Optional[str] = None) -> None:
        await handle(interaction, "kb", f"add {text or ''}".strip(), [file] if file else [])

    tree.add_command(kb)

    @tree.command(name="digest", description="The daily digest of this channel")
    @app_commands.describe(action="turn it on or off, post one now, or show its status", time="on: the time of day, e.g. 09:00")
    async def digest(interaction: discord.Interaction, action: Literal["on", "off", "now", "status"], time: Optional[str] = None) -> None:
        await handle(interaction, "digest", f"{action} {time or ''}".strip(), [])

    @tree.command(name="agent", description="A multi-step task that may search, calculate and read channel history")
    @app_commands.describe(task="what to do")
    async def agent(interaction: discord.Interaction, task: str) -> None:
        await handle(interaction, "agent", task, [])

    @tree.command(name="ai-stats", description="Model usage per pattern: requests, latency, tokens, cost")
    @app_commands.describe(window="only the last window, e.g. 24h or 7d")
    async def ai_stats(interaction: discord.Interaction, window: Optional[str] = None) -> None:
        await handle(interaction, "ai-stats", window or "", [])

    @tree.command(name="help", description="What the bot can do")
    async def help_(interaction: discord.Interaction) -> None:
        await handle(interaction, "help", "", [])

    return tree
