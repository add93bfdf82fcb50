"""Language scores of reconstructed points: cosine similarity in the text encoder's space."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def language_embeddings(features: Tensor, projection: nn.Linear) -> Tensor:
    """(..., F) semantic features -> (..., D_text) unit vectors in the text space."""
    return F.normalize(projection(features), dim=-1)


def query_scores(features: Tensor, projection: nn.Linear, text: Tensor) -> Tensor:
    """(..., F) features, (Q, D_text) unit text embeddings -> (..., Q) cosine similarities in [-1, 1]."""
    return language_embeddings(features, projection) @ text.T.to(features)


def classify(features: Tensor, projection: nn.Linear, class_text: Tensor) -> Tensor:
    """Class index per feature: the class name whose embedding is most similar. (...,) int64."""
    return query_scores(features, projection, class_text).argmax(dim=-1)
