"""`raas local` loads the local embedding model at start, and calls no provider to do so."""

from __future__ import annotations

import os

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
    requests queued for them (bench/search_concurrency.py). Checked in a fresh interpreter, in the order `raas local`
    starts: the limit is set before anything has imported numpy (threadpoolctl limits only libraries already loaded)."""
    import subprocess
    import sys
    from pathlib import Path

    check = (
        "import sys\n"
        "from raas.local.server import limit_blas_threads\n"
        "assert 'numpy' not in sys.modules, 'numpy was loaded before the limit: the check proves nothing'\n"
        "limit_blas_threads()\n"
        "import numpy\n"
        "from threadpoolctl import threadpool_info\n"
        "print(sorted({pool['num_threads'] for pool in threadpool_info() if pool['user_api'] == 'blas'}))\n"
    )
    lambdas = Path(__file__).resolve().parents[2] / "lambdas"
    environment = {**os.environ, "PYTHONPATH": str(lambdas)}
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120, env=environment)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[1]"
