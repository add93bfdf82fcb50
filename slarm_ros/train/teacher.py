"""Semantic teachers: per-pixel language features that rendered Gaussian features are distilled into.

A teacher is anything with ``features(images, labels)``. SLARM distils a 2D open-vocabulary
segmenter (LSeg); none ships here, so for the synthetic world the teacher is the ideal one: each
pixel gets the text encoder's embedding of its true class name. A real 2D model plugs in by
implementing the same method and ignoring ``labels``.
"""
from __future__ import annotations

from typing import Protocol, Sequence

import torch
from torch import Tensor

from ..semantics.text_encoder import default_text_encoder


class SemanticTeacher(Protocol):
    dim: int
    vocabulary: Tensor | None  # (C, dim) unit embeddings of the names it tells apart, if it has a label set

    def features(self, images: Tensor, labels: Tensor | None) -> Tensor:
        """images (V, H, W, 3) in [0, 1]; labels (V, H, W) class ids where the data has them ->
        (V, H, W, dim) unit vectors in the text encoder's space."""
        ...


class ClassNameTeacher:
    """The text embedding of each pixel's ground-truth class name."""

    def __init__(self, class_names: Sequence[str], device: torch.device | str = "cpu"):
        self.class_names = tuple(class_names)
        self.table = default_text_encoder().encode(list(self.class_names)).to(device)  # (classes, dim)
        self.dim = self.table.shape[1]
        self.vocabulary = self.table.clone()  # the encoder returns inference tensors, which autograd refuses

    def features(self, images: Tensor, labels: Tensor | None) -> Tensor:
        if labels is None:
            raise ValueError("the class-name teacher needs per-pixel class labels")
        return self.table[labels]
