"""The offline MiniLM runs its transformer as one traced graph, and only when that gives the eager model's embeddings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from raas.adapters import embedders

TEXTS = [
    "a",
    "What does the ingest worker do when the tenant is suspended?",
    "Zürich, São Paulo and Kraków: accents and non-ASCII text — with a dash.",
    "Over two hundred and fifty-six tokens, so the model's window truncates it. " * 30,
    "Mitochondrial dysfunction in ageing muscle.\nOxidative stress and the electron transport chain.",
]


@pytest.fixture(scope="module")
def model() -> Any:
    return embedders.load_minilm()


@pytest.fixture
def eager_model(model: Any) -> Iterator[Any]:
    """The same model with its class's own (eager) forward pass; the traced one is put back after the test."""
    transformer = model[0].model
    traced = vars(transformer).pop("forward", None)
    yield model
    vars(transformer).pop("forward", None)
    if traced is not None:
        transformer.forward = traced


def encode(model: Any, batch_size: int) -> Any:
    return model.encode(TEXTS, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)


def test_the_transformer_runs_traced_and_embeds_as_the_eager_model_does(model: Any) -> None:
    transformer = model[0].model
    assert "forward" in vars(transformer), "the loaded model should run its transformer as a traced graph"
    traced = {size: encode(model, size) for size in (1, 2, len(TEXTS))}  # unpadded, two lengths at a time, all padded
    graph_forward = vars(transformer).pop("forward")
    try:
        eager = {size: encode(model, size) for size in (1, 2, len(TEXTS))}
    finally:
        transformer.forward = graph_forward
    for size in traced:
        np.testing.assert_allclose(traced[size], eager[size], atol=1e-6)
    assert traced[1].shape == (len(TEXTS), 384)


def test_a_trace_that_embeds_differently_is_not_kept(eager_model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    freeze = torch.jit.freeze

    class Skewed(torch.nn.Module):
        def __init__(self, graph: Any):
            super().__init__()
            self.graph = graph

        def forward(self, *args: Any) -> Any:
            return self.graph(*args) + 0.05

    monkeypatch.setattr(torch.jit, "freeze", lambda module: Skewed(freeze(module)))
    expected = encode(eager_model, len(TEXTS))
    embedders._run_transformer_traced(eager_model)
    assert "forward" not in vars(eager_model[0].model)
    np.testing.assert_allclose(encode(eager_model, len(TEXTS)), expected, atol=1e-6)


def test_a_model_the_tracer_cannot_handle_stays_eager(eager_model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("this torch cannot trace the model")

    monkeypatch.setattr(torch.jit, "trace", refuse)
    expected = encode(eager_model, len(TEXTS))
    embedders._run_transformer_traced(eager_model)
    assert "forward" not in vars(eager_model[0].model)
    np.testing.assert_allclose(encode(eager_model, len(TEXTS)), expected, atol=1e-6)
