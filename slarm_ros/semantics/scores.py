"""Language scores of reconstructed points: cosine similarity in the text encoder's space."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def language_embeddings(features: Tensor, projection: nn.Linear) -> Tensor:
    """(..., F) semantic features -> (..., D_text) unit vectors in the text space."""
    return F.normalize(projection(features), dim=-1)


def query_scores(features: Tensor, projection: nn.Linear, text: Tensor) -> Tensor:
    """(..., F) features, (Q, D_text) unit text embeddings -> (..., Q) cosine similarities in [-1, 1].

    Computed in the feature space, without projecting every feature to D_text dimensions:
    with e = W f + b,  e . t = f . (W^T t) + b . t  and  |e|^2 = f^T (W^T W) f + 2 f . (W^T b) + b . b.
    """
    W, b = projection.weight, projection.bias  # (D_text, F), (D_text,)
    text = text.to(features)
    dots = features @ (W.T @ text.T) + b @ text.T  # (..., Q)
    norm2 = ((features @ (W.T @ W)) * features).sum(-1) + 2 * features @ (W.T @ b) + b @ b
    return dots / norm2.clamp_min(1e-12).sqrt()[..., None]


def classify(features: Tensor, projection: nn.Linear, class_text: Tensor) -> Tensor:
    """Class index per feature: the class name whose embedding is most similar. (...,) int64."""
    return query_scores(features, projection, class_text).argmax(dim=-1)
