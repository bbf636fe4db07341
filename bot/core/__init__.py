"""The core: platform- and pattern-free. Message model, router and renderer, command and
feature registry, LLM client, caches, usage ledger, storage, embeddings, settings base,
HTTP server. Nothing here imports a pattern, an adapter or the composition root."""
