"""The one LLM interface (`LLM`: `complete()` and `stream()`), built once and injected.

`client` holds the interface; `bookkeeping` one call's cache entry, token counts and
ledger row; `chunks` reading answers and streams; `failures` mapping every failure to
one `LLMError` kind; `types` the options and results.
"""
from bot.core.llm.client import LLM, LLMStream, build_client
from bot.core.llm.failures import as_llm_error
from bot.core.llm.types import ChatOptions, Completion, ToolCall

__all__ = ["LLM", "ChatOptions", "Completion", "LLMStream", "ToolCall", "as_llm_error", "build_client"]
