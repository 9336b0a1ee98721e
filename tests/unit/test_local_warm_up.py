"""`raas local` loads the local embedding model at start, and calls no provider to do so."""

from __future__ import annotations

from raas.bootstrap import bootstrap
from raas.local.server import warm_embedder
from raas.settings import Settings
from tests.helpers import HashingEmbedder


class RecordingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[list[str]] = []

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.asked.append(texts)
        return super().embed(texts)


def test_the_local_model_is_warmed_in_the_background_at_start() -> None:
    embedder = RecordingEmbedder()
    thread = warm_embedder(bootstrap(Settings.from_env({"RAAS_EMBEDDER": "local"}), embedder=embedder))
    assert thread is not None
    thread.join(timeout=30)
    assert embedder.asked == [["warm up"]]


def test_a_providers_embedder_is_not_called_at_start() -> None:
    """With RAAS_EMBEDDER=openai the warm-up used to embed "warm up" through OpenAI at every start: a billed
    call before any document, and a traceback in the output when no key was set."""
    embedder = RecordingEmbedder()
    assert warm_embedder(bootstrap(Settings.from_env({"RAAS_EMBEDDER": "openai"}), embedder=embedder)) is None
    assert embedder.asked == []
