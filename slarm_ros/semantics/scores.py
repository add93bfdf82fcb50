"""Language scores of reconstructed points: cosine similarity in the text encoder's space."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def language_embeddings(features: Tensor, projection: nn.Linear) -> Tensor:
    """(..., F) semantic features -> (..., D_text) unit vectors in the text space."""
    return F.normalize(projection(features), dim=-1)


@dataclass(frozen=True)
class QueryScorer:
    """Cosine similarities of semantic features to fixed text embeddings, prepared once per query set.

    Computed in the feature space, without projecting every feature to D_text dimensions. With
    e = W f + b and the thin QR decomposition W = Q R:  e . t = f . (W^T t) + b . t  and
    |e|^2 = |R f + Q^T b|^2 + (|b|^2 - |Q^T b|^2). Per feature that is two small matrix products.
    """

    text_in_features: Tensor  # (F, Q) W^T t
    text_bias: Tensor  # (Q,) b . t
    root: Tensor  # (F, F) R^T
    root_bias: Tensor  # (F,) Q^T b
    residual: float  # |b|^2 - |Q^T b|^2, the part of b outside W's column space

    @classmethod
    def build(cls, projection: nn.Linear, text: Tensor) -> "QueryScorer":
        """projection: features (F) -> text space (D_text); text (Q, D_text) unit embeddings.

        For inference: the projection is read as it is now, without gradients.
        """
        W, b = projection.weight.detach().double(), projection.bias.detach().double()
        text = text.detach().to(W)
        q, r = torch.linalg.qr(W)
        root_bias = q.T @ b
        dtype = projection.weight.dtype
        return cls(text_in_features=(W.T @ text.T).to(dtype), text_bias=(text @ b).to(dtype), root=r.T.to(dtype),
                   root_bias=root_bias.to(dtype), residual=max(float(b @ b - root_bias @ root_bias), 0.0))

    def __call__(self, features: Tensor) -> Tensor:
        """(..., F) features -> (..., Q) cosine similarities in [-1, 1]."""
        flat = features.reshape(-1, features.shape[-1])
        y = torch.addmm(self.root_bias.to(flat), flat, self.root.to(flat))
        norm = ((y * y).sum(-1) + self.residual).clamp_min(1e-12).sqrt()
        dots = torch.addmm(self.text_bias.to(flat), flat, self.text_in_features.to(flat))
        return (dots / norm[:, None]).reshape(*features.shape[:-1], -1)


def query_scores(features: Tensor, projection: nn.Linear, text: Tensor) -> Tensor:
    """(..., F) features, (Q, D_text) unit text embeddings -> (..., Q) cosine similarities in [-1, 1]."""
    return QueryScorer.build(projection, text)(features)
