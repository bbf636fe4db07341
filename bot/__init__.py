"""aibot core: platform-free configuration, composition, message model, router, LLM
client, storage, cache, usage ledger."""

__version__ = "0.1.0"
