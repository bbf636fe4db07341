"""The local embedding model as an ONNX file, for processes that need a few vectors fast
(`aibot kb search`, `aibot ask`): onnxruntime + tokenizers start in well under a second,
where importing sentence-transformers and torch takes several.

The file is made from the very same weights, once, by the first process that loads the
torch model (the bot, `aibot kb add`, `aibot kb reembed`): the transformer exported with
mean pooling and L2 normalisation built in (what sentence-transformers does for
all-MiniLM-L6-v2), next to a copy of its tokenizer, under `<AIBOT_DATA_DIR>/models/`.
Vectors agree with the torch model's to ~1e-7. Nothing is downloaded.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
import warnings
from pathlib import Path

log = logging.getLogger(__name__)

_sessions: dict[Path, "OnnxModel"] = {}
_lock = threading.Lock()


def model_dir(cache_dir: Path, model: str) -> Path:
    return cache_dir / model.replace("/", "__")


def available(cache_dir: Path | None, model: str) -> bool:
    """Whether an exported copy of `model` is there and onnxruntime can run it."""
    if cache_dir is None or not (model_dir(cache_dir, model) / "model.onnx").is_file():
        return False
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class OnnxModel:
    def __init__(self, folder: Path, *, max_tokens: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.enable_padding()
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(folder / "model.onnx"), opts, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str]):
        import numpy as np

        enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        return self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]


def load(cache_dir: Path, model: str) -> OnnxModel:
    folder = model_dir(cache_dir, model)
    with _lock:
        if folder not in _sessions:
            import json

            max_tokens = json.loads((folder / "meta.json").read_text()).get("max_tokens", 256)
            _sessions[folder] = OnnxModel(folder, max_tokens=max_tokens)
        return _sessions[folder]


def warm(cache_dir: Path | None, model: str) -> None:
    """Load the ONNX copy in a daemon thread, if there is one, and return at once: a command
    that needs one query vector (`aibot kb search`) loads it while its database starts;
    its `encode` then waits for this load (one lock) instead of starting its own."""

    def run() -> None:
        try:
            if available(cache_dir, model):
                load(cache_dir, model)
        except Exception as exc:  # the search itself loads it again and reports the failure
            log.debug("ONNX warm-up of %s failed: %s", model, exc)

    threading.Thread(target=run, name="onnx-warm-up", daemon=True).start()


def export(st_model, source: str, cache_dir: Path, model: str) -> None:
    """Write `st_model` (a loaded SentenceTransformer whose first module is a Transformer,
    then mean pooling and normalisation) as ONNX; skipped silently if anything is missing."""
    folder = model_dir(cache_dir, model)
    if (folder / "model.onnx").is_file():
        return
    try:
        import json

        import torch

        tokenizer = Path(source) / "tokenizer.json"
        names = [type(m).__name__ for m in st_model]
        pooling = st_model[1].get_config_dict() if len(names) > 1 else {}
        mean = pooling.get("pooling_mode") == "mean" or pooling.get("pooling_mode_mean_tokens") is True
        if names[:2] != ["Transformer", "Pooling"] or not mean or not tokenizer.is_file():
            return
        bert = st_model[0].auto_model.eval()

        class MeanPooled(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.bert = bert

            def forward(self, input_ids, attention_mask):
                out = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                m = attention_mask.unsqueeze(-1).to(out.dtype)
                v = (out * m).sum(1) / m.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(v, dim=1)

        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"model.onnx.{os.getpid()}.tmp"
        ids = torch.ones(1, 8, dtype=torch.long)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings: nothing a user can act on
            torch.onnx.export(
                MeanPooled(), (ids, ids), str(tmp), input_names=["input_ids", "attention_mask"],
                output_names=["embedding"], opset_version=17, dynamo=False,
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                              "embedding": {0: "batch"}},
            )
        shutil.copyfile(tokenizer, folder / "tokenizer.json")
        (folder / "meta.json").write_text(json.dumps({"model": model, "max_tokens": int(st_model.max_seq_length)}))
        os.replace(tmp, folder / "model.onnx")
        log.info("embedding model %s exported for fast start-up to %s", model, folder)
    except Exception as exc:  # an optimisation only: searches fall back to torch
        log.debug("ONNX export of %s skipped: %s", model, exc)
