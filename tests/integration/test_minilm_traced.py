"""The offline MiniLM runs its transformer as one traced graph, and only when that gives the eager model's embeddings."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
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


# --- the compiled model kept between starts ------------------------------------------------------------


@pytest.fixture
def built_here(model: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`load_local_model` makes the compiled model from this module's already loaded one (a load costs seconds)."""
    monkeypatch.setattr(embedders, "load_minilm", lambda: model)
    return model


@pytest.fixture(scope="module")
def kept(model: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A cache the compiled model was kept in once, for the module (each keeping writes 90 MB): its directory and
    the model `load_local_model` returned."""
    cache = tmp_path_factory.mktemp("kept") / "cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(embedders, "load_minilm", lambda: model)
        return cache, embedders.load_local_model(cache)


def kept_files(cache: Path) -> tuple[Path, Path]:
    return embedders.CompiledMiniLM._files(cache, embedders._cache_key())


def own_copy(kept: tuple[Path, Any], tmp_path: Path) -> Path:
    """The kept cache, for one test to spoil: the reference copied, the graph linked (a test replaces it, never
    writes into it)."""
    for source, target in zip(kept_files(kept[0]), kept_files(tmp_path), strict=True):
        if source.suffix == ".pt":
            os.link(source, target)
        else:
            shutil.copyfile(source, target)
    return tmp_path


def test_the_compiled_model_is_kept_and_embeds_as_sentence_transformers_does(kept: tuple[Path, Any], model: Any) -> None:
    cache, compiled = kept
    assert isinstance(compiled, embedders.CompiledMiniLM)
    assert all(file.exists() for file in kept_files(cache))
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    for size in (1, 2, len(TEXTS)):
        np.testing.assert_allclose(compiled.encode(TEXTS, batch_size=size), encode(model, size), atol=1e-5)
    assert compiled.encode(TEXTS).shape == (len(TEXTS), 384)


def test_a_later_start_loads_the_kept_model_without_sentence_transformers(kept: tuple[Path, Any]) -> None:
    probe = (
        "import sys; from pathlib import Path; from raas.adapters.embedders import load_local_model;"
        f"model = load_local_model(Path({str(kept[0])!r}));"
        "print(type(model).__name__, *sorted(m for m in ('transformers', 'sentence_transformers', 'sklearn') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert loaded.stdout.split() == ["CompiledMiniLM"], loaded.stdout + loaded.stderr


def test_a_kept_model_that_no_longer_embeds_as_when_kept_is_made_again(kept: tuple[Path, Any], built_here: Any, tmp_path: Path) -> None:
    cache = own_copy(kept, tmp_path)
    _, reference_file = kept_files(cache)
    spoiled = json.loads(reference_file.read_text())
    spoiled["embeddings"] = (np.array(spoiled["embeddings"]) + 0.05).tolist()
    reference_file.write_text(json.dumps(spoiled))
    assert embedders.CompiledMiniLM.load(cache, embedders._cache_key()) is None

    again = embedders.load_local_model(cache)
    np.testing.assert_allclose(again.encode(TEXTS), encode(built_here, len(TEXTS)), atol=1e-5)
    assert embedders.CompiledMiniLM.load(cache, embedders._cache_key()) is not None, "the reference was written again"


def test_an_unreadable_kept_graph_is_made_again(kept: tuple[Path, Any], built_here: Any, tmp_path: Path) -> None:
    cache = own_copy(kept, tmp_path)
    graph_file, _ = kept_files(cache)
    graph_file.unlink()  # the link, not the module's kept graph
    graph_file.write_bytes(b"not a TorchScript archive")
    assert embedders.CompiledMiniLM.load(cache, embedders._cache_key()) is None
    assert isinstance(embedders.load_local_model(cache), embedders.CompiledMiniLM)
    assert embedders.CompiledMiniLM.load(cache, embedders._cache_key()) is not None


def test_a_cache_that_cannot_be_written_costs_only_the_next_starts_speed(built_here: Any, tmp_path: Path) -> None:
    blocked = tmp_path / "a file, not a directory"
    blocked.write_text("")
    compiled = embedders.load_local_model(blocked / "cache")
    np.testing.assert_allclose(compiled.encode(TEXTS), encode(built_here, len(TEXTS)), atol=1e-5)
    assert not list(tmp_path.glob("**/*minilm-*"))


def test_a_model_that_stays_eager_is_used_as_it_is_and_not_kept(eager_model: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(embedders, "load_minilm", lambda: eager_model)  # its trace was refused: no graph on it
    assert embedders.load_local_model(tmp_path) is eager_model
    assert not list(tmp_path.iterdir())
