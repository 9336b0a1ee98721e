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


def test_raas_local_leaves_numpys_matrix_products_one_blas_thread() -> None:
    """OpenBLAS's threads busy-wait between calls: each semantic search took two cores, and searches of several
    requests queued for them (bench/search_concurrency.py)."""
    import numpy  # noqa: F401 - loads the BLAS whose threads are limited
    from threadpoolctl import ThreadpoolController

    from raas.local.server import limit_blas_threads

    controller = ThreadpoolController()
    blas = controller.select(user_api="blas")
    assert blas.lib_controllers, "numpy's BLAS is loaded"
    original = [pool.num_threads for pool in blas.lib_controllers]
    try:
        limit_blas_threads()
        assert [pool.num_threads for pool in ThreadpoolController().select(user_api="blas").lib_controllers] == [1] * len(original)
    finally:
        for pool, threads in zip(blas.lib_controllers, original, strict=True):
            pool.set_num_threads(threads)
