"""Knowledge base (RAG): ingestion of every file type, refusals, versions, tenant isolation,
grounded answers with citations, the not-in-the-knowledge-base threshold, /kb management.

Uses the real local embedding model (loaded once per test process) and real PostgreSQL."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from bot.core.messages import Attachment
from tests import kb_docs
from tests.harness import RecordingConversation

HANDBOOK = b"""# Security

## API keys

API keys are rotated every 90 days by the platform team. To rotate a key, open the admin
console, choose Keys, and press Rotate. The old key keeps working for 24 hours.

# Billing

## Refunds

Customers can ask for a refund within 30 days of purchase. Refunds are paid back to the
original card within five business days.
"""


async def count(app, table: str) -> int:
    async with app.services.db.engine.connect() as conn:
        return (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar()


async def upload(bot, files: dict[str, bytes], *, text: str = "", **overrides) -> str:
    conv = RecordingConversation(files={n: d for n, d in files.items()})
    atts = tuple(Attachment(name=n, ref=n, size=len(d)) for n, d in files.items())
    replies = await bot.send(text, conv=conv, attachments=atts, is_dm=True, **overrides)
    return "\n".join(replies)


async def test_every_supported_type_is_ingested_with_structure(bot, app):
    reply = await upload(
        bot,
        {
            "handbook.md": HANDBOOK,
            "notes.txt": b"The office wifi password is changed every Monday.\n\nAsk Dana for it.",
            "manual.pdf": kb_docs.pdf(["Chapter one: installing the printer driver.", "Chapter two: paper jams are cleared from tray 2."]),
            "policy.docx": kb_docs.docx([("Travel", ["Book trains for trips under 500 km."]), ("Expenses", ["Receipts go to finance within a week."])]),
            "faq.html": kb_docs.html("FAQ", [("Parking", "Visitors park in the blue zone.")]),
        },
    )
    assert reply.count("Added") == 5, reply
    assert "manual.pdf" in reply and "from 2 pages" in reply

    found = await app.services.kb.search(tenant="T1", query="how do I clear a paper jam?", k=1)
    assert found[0].document == "manual.pdf" and found[0].page == 2
    assert found[0].citation == "manual.pdf, p. 2"

    found = await app.services.kb.search(tenant="T1", query="how long do refunds take to arrive?", k=1)
    assert found[0].document == "handbook.md" and found[0].heading == "Billing > Refunds"

    found = await app.services.kb.search(tenant="T1", query="where do visitors park?", k=1)
    assert found[0].document == "faq.html" and found[0].heading == "FAQ > Parking"
    assert "do not index" not in found[0].text

    found = await app.services.kb.search(tenant="T1", query="rules for booking train travel", k=1)
    assert found[0].document == "policy.docx" and found[0].heading == "Travel"


@pytest.mark.parametrize(
    "name, data, expected",
    [
        ("empty.txt", b"", "empty"),
        ("scan.pdf", kb_docs.pdf(["   "]), "no text layer"),
        ("broken.pdf", kb_docs.pdf(["some text"])[:150] + b"garbage", "not a readable PDF"),
        ("locked.pdf", kb_docs.encrypted_pdf(["top secret plan"]), "encrypted"),
        ("broken.docx", b"PK\x03\x04 not really a zip", "not a readable Word document"),
        ("image.png", b"\x89PNG\r\n\x1a\n....", "only .txt, .md, .pdf, .docx and .html"),
    ],
)
async def test_bad_files_get_one_sentence_and_store_nothing(bot, app, name, data, expected):
    # named: an image sent without naming the knowledge base is a question for the model
    reply = await upload(bot, {name: data}, text="add this to the knowledge base")
    assert expected in reply
    assert "Traceback" not in reply and "Error(" not in reply
    assert await count(app, "kb_documents") == 0 and await count(app, "kb_chunks") == 0


async def test_a_30_mb_file_is_refused_before_download(bot, app):
    big = b"word " * (6 * 1024 * 1024)  # 30 MB
    conv = RecordingConversation(files={})  # a download would fail loudly
    att = Attachment(name="huge.txt", ref="huge", size=len(big))
    replies = await bot.send("", conv=conv, attachments=(att,), is_dm=True)
    assert replies == ["huge.txt is too large (30.0 MB; the limit is 20.0 MB)."]
    assert await count(app, "kb_documents") == 0


async def test_a_30_mb_file_of_unknown_size_is_refused_after_download(bot, app):
    big = b"word " * (6 * 1024 * 1024)
    conv = RecordingConversation(files={"huge": big})
    replies = await bot.send("", conv=conv, attachments=(Attachment(name="huge.txt", ref="huge"),), is_dm=True)
    assert "too large" in replies[0]
    assert await count(app, "kb_documents") == 0


async def test_one_bad_file_does_not_stop_the_others(bot, app):
    reply = await upload(bot, {"good.md": HANDBOOK, "bad.pdf": b"%PDF-1.4 broken"})
    assert "Added good.md" in reply and "bad.pdf is not a readable PDF" in reply
    assert [d.name for d in await app.services.kb.list(tenant="T1")] == ["good.md"]


async def test_same_content_is_recognized_and_a_new_version_replaces_the_old(bot, app):
    first = await upload(bot, {"handbook.md": HANDBOOK})
    assert "Added handbook.md" in first
    chunks_before = await count(app, "kb_chunks")

    again = await upload(bot, {"copy-of-handbook.md": HANDBOOK})
    assert "already in the knowledge base as handbook.md" in again
    assert await count(app, "kb_documents") == 1 and await count(app, "kb_chunks") == chunks_before

    new = HANDBOOK.replace(b"within 30 days", b"within 60 days")
    replaced = await upload(bot, {"handbook.md": new})
    assert "Replaced handbook.md with the new version" in replaced
    docs = await app.services.kb.list(tenant="T1")
    assert len(docs) == 1 and docs[0].version == 2
    found = await app.services.kb.search(tenant="T1", query="how many days do customers have to ask for a refund?", k=3)
    texts = " ".join(p.text for p in found)
    assert "60 days" in texts and "30 days" not in texts


async def test_tenants_never_see_each_others_documents(bot, app, fake_llm):
    await upload(bot, {"handbook.md": HANDBOOK}, tenant="A")
    kb = app.services.kb
    assert await kb.search(tenant="B", query="how do I rotate an API key?", k=5) == []
    assert (await kb.search(tenant="A", query="how do I rotate an API key?", k=5))[0].document == "handbook.md"

    reply = await bot.send("/ask how do I rotate an API key?", tenant="B")
    assert "not in the knowledge base" in reply[0]
    assert fake_llm.chat_requests == []
    assert "empty" in (await bot.send("/kb list", tenant="B"))[0]
    doc_id = (await kb.list(tenant="A"))[0].id
    assert "There is no document" in (await bot.send(f"/kb remove {doc_id}", tenant="B"))[0]
    assert len(await kb.list(tenant="A")) == 1


async def test_channel_scoped_documents_stay_in_their_channel(app):
    kb = app.services.kb
    await kb.ingest(tenant="T1", channel="C-secret", name="plan.md", data=b"# Plan\n\nThe launch date is March 3rd.")
    assert (await kb.search(tenant="T1", channel="C-secret", query="when is the launch?", k=1))[0].document == "plan.md"
    assert await kb.search(tenant="T1", channel="C-other", query="when is the launch?", k=1) == []


async def test_ask_streams_an_answer_from_numbered_sources_and_cites_them(bot, app, fake_llm):
    await upload(bot, {"handbook.md": HANDBOOK, "notes.txt": b"The office wifi password is changed every Monday."})
    fake_llm.tokens_per_second = 300
    fake_llm.enqueue("Press Rotate in the admin console under Keys [1]; the old key works for 24 hours [1].")
    replies = await bot.send("/ask how do I rotate an API key?")
    answer = replies[-1]
    assert answer.startswith("Press Rotate")
    assert len(bot.last.messages[-1].versions) > 2  # it appeared progressively (streamed)
    assert "**Sources**\n[1] handbook.md, § Security > API keys" in answer

    prompt = fake_llm.chat_requests[-1]["messages"][-1]["content"]
    assert fake_llm.chat_requests[-1]["stream"] is True
    first_source = re.search(r"\[1\] \((.*?)\)\n(.*?)(?:\n\n\[2\]|\n\nQuestion:)", prompt, re.S)
    assert first_source.group(1) == "handbook.md, § Security > API keys"
    assert "press Rotate" in first_source.group(2)
    await app.services.ledger.flush()  # rows are written behind the answer
    async with app.services.db.engine.connect() as conn:
        row = (await conn.execute(text("SELECT pattern, streamed, extra FROM usage"))).one()
    assert row[0] == "rag" and row[1] is True
    cited = row[2]["chunks"][0]
    async with app.services.db.engine.connect() as conn:
        chunk_text = (await conn.execute(text("SELECT text FROM kb_chunks WHERE id = :i"), {"i": cited})).scalar()
    assert chunk_text in prompt


async def test_below_the_threshold_it_says_not_in_the_knowledge_base(bot, fake_llm):
    await upload(bot, {"handbook.md": HANDBOOK})
    replies = await bot.send("/ask what is the capital of Mongolia?")
    assert replies[0].startswith("That is not in the knowledge base")
    assert fake_llm.chat_requests == []


async def test_a_mention_with_strong_hits_goes_to_rag_and_others_to_chat(bot, fake_llm):
    await upload(bot, {"handbook.md": HANDBOOK})
    fake_llm.enqueue("Refunds go back to the card within five business days [1].")
    replies = await bot.send("@aibot how long until a refund is paid back to the card?")
    assert "[1] handbook.md, § Billing > Refunds" in replies[-1]
    assert fake_llm.chat_requests[-1]["messages"][0]["content"].startswith("You answer questions for a team using only")

    fake_llm.enqueue("Hi! How can I help?")
    replies = await bot.send("@aibot good morning, how are you?")
    assert replies[-1] == "Hi! How can I help?"
    assert "Sources" not in fake_llm.chat_requests[-1]["messages"][-1]["content"]


async def test_kb_search_list_add_and_remove_in_chat(bot, app, fake_llm):
    reply = (await bot.send("/kb add Deploys happen on Tuesdays after the standup.\n\nHotfixes can go out any day."))[0]
    assert reply.startswith("Added Deploys happen on Tuesdays")
    await upload(bot, {"handbook.md": HANDBOOK})
    listing = (await bot.send("/kb list"))[0]
    assert "2 documents" in listing and "handbook.md" in listing and "added by alice" in listing

    found = (await bot.send("/kb search when do deploys happen?"))[0]
    assert "[1] **Deploys happen on Tuesdays" in found
    assert fake_llm.chat_requests == []  # search never calls the model

    doc_id = next(d.id for d in await app.services.kb.list(tenant="T1") if d.name == "handbook.md")
    assert (await bot.send(f"/kb remove {doc_id}"))[0] == f"Removed handbook.md (#{doc_id}) from the knowledge base."
    assert "handbook.md" not in (await bot.send("/kb list"))[0]
    async with app.services.db.engine.connect() as conn:
        left = (await conn.execute(text("SELECT count(*) FROM kb_chunks WHERE document_id = :d"), {"d": doc_id})).scalar()
    assert left == 0


async def test_files_with_an_add_to_kb_mention_in_a_channel_are_ingested(bot, app):
    conv = RecordingConversation(files={"f1": HANDBOOK})
    replies = await bot.send(
        "@aibot add this to the knowledge base", conv=conv, attachments=(Attachment(name="handbook.md", ref="f1"),)
    )
    assert replies[0].startswith("Added handbook.md")
    assert (await app.services.kb.list(tenant="T1"))[0].added_by == "alice"


async def test_without_a_model_ask_returns_the_best_passages(tmp_path, database_url):
    from bot.app import App
    from bot.core.settings import Settings
    from tests.harness import Harness

    settings = Settings(_env_file=None, database_url=database_url, data_dir=tmp_path / "d")
    async with await App.open(settings) as app:
        bot = Harness(app)
        await upload(bot, {"handbook.md": HANDBOOK})
        reply = (await bot.send("/ask how do I rotate an API key?"))[0]
    assert reply.startswith("No language model is configured, so here are the best passages:")
    assert "[1] **handbook.md, § Security > API keys**" in reply


async def test_reembed_rebuilds_vectors_after_a_model_change(app, fake_llm):
    import openai

    from bot.core.embeddings import OpenAIEmbedder
    from bot.core.errors import UserError
    from patterns.rag.store import KnowledgeStore

    result = await app.services.kb.ingest(tenant="T1", name="handbook.md", data=HANDBOOK, added_by="alice")
    client = openai.AsyncOpenAI(base_url=fake_llm.base_url, api_key="sk-test")
    embedder = OpenAIEmbedder(client=client, model="fake-embed", dimensions=256)
    store = KnowledgeStore(db=app.services.db, embedder=embedder, settings=app.services.kb.settings)
    with pytest.raises(UserError, match="aibot kb reembed"):
        await store.search(tenant="T1", query="refund within 30 days of purchase", k=1)

    assert await store.reembed() == result.chunks
    found = await store.search(tenant="T1", query="refund within 30 days of purchase", k=1)
    assert found[0].heading == "Billing > Refunds"
    async with app.services.db.engine.connect() as conn:
        models = (await conn.execute(text("SELECT DISTINCT model, dim FROM kb_chunks"))).all()
        index = (await conn.execute(text("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_kb_chunks_embedding_256'"))).scalar()
    assert models == [("fake-embed", 256)] and index == 1
    await client.close()


async def test_ask_without_a_question_explains_itself(bot, fake_llm):
    assert (await bot.send("/ask"))[0].startswith("Ask a question after /ask")
    help_text = (await bot.send("/help"))[0]
    assert "/ask [--fresh] <question>" in help_text and "/kb add [text]" in help_text
    assert fake_llm.chat_requests == []
