"""The pieces of `raas local`'s worker processes that need no server: the embedding micro-batcher, the channels'
calls and answers, the transport's refusal of any endpoint but the local one, and the default worker count."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client
from pathlib import Path
from types import SimpleNamespace

import pytest

from raas.domain.config import ConfigVersion, TenantConfig
from raas.local import workers
from raas.local.workers import (
    ChannelTransport,
    KeptConfigs,
    MicroBatcher,
    RegistryWrites,
    WorkerFailure,
    _Address,
    _Answering,
    _Calls,
    default_worker_count,
)
from raas.services.config import ConfigCache


class RecordingModel:
    """Embeds each text as [its number], slowly enough that requests arriving meanwhile queue up."""

    def __init__(self, seconds: float = 0.05, fail: bool = False):
        self.seconds = seconds
        self.fail = fail
        self.calls: list[tuple[str, list[str]]] = []

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls.append((threading.current_thread().name, list(texts)))
        time.sleep(self.seconds)
        if self.fail:
            raise RuntimeError("model failed")
        return [[float(text.split()[-1])] for text in texts]


def embed_at_once(batcher: MicroBatcher, requests: list[list[str]]) -> list[list[list[float]] | BaseException]:
    results: list[list[list[float]] | BaseException] = [[] for _ in requests]

    def run(index: int) -> None:
        try:
            results[index] = batcher.embed(requests[index])
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results


def test_small_requests_that_arrive_together_share_a_call_and_each_gets_its_own_vectors() -> None:
    model = RecordingModel()
    batcher = MicroBatcher(model.embed)
    requests = [[f"query {i}"] for i in range(8)] + [["pair 100", "pair 101"]]
    results = embed_at_once(batcher, requests)

    assert results == [[[float(i)]] for i in range(8)] + [[[100.0], [101.0]]]
    assert batcher.batches == len(model.calls) < len(requests)  # the ones that waited went in together
    assert sorted(text for _, texts in model.calls for text in texts) == sorted(text for texts in requests for text in texts)
    assert {thread for thread, _ in model.calls} == {"raas-embed-batcher"}


def test_a_large_request_is_embedded_alone_on_its_own_thread() -> None:
    model = RecordingModel(seconds=0)
    batcher = MicroBatcher(model.embed)
    chunks = [f"chunk {i}" for i in range(workers.SMALL_REQUEST_TEXTS + 1)]
    assert batcher.embed(chunks) == [[float(i)] for i in range(len(chunks))]
    assert model.calls == [(threading.current_thread().name, chunks)]
    assert batcher.batches == 0


def test_a_failed_batch_fails_every_request_in_it() -> None:
    batcher = MicroBatcher(RecordingModel(fail=True).embed)
    results = embed_at_once(batcher, [[f"query {i}"] for i in range(4)])
    assert all(isinstance(result, RuntimeError) and str(result) == "model failed" for result in results)
    with pytest.raises(RuntimeError, match="model failed"):  # and the batcher still serves the next one
        batcher.embed(["query 9"])


@pytest.fixture
def address(tmp_path: Path) -> _Address:
    return _Address(str(tmp_path / "channel.sock"), b"k" * 32)


def test_a_channel_answers_each_call_and_reports_a_failure_to_the_caller(address: _Address) -> None:
    def answer(a: int, b: int) -> int:
        if b == 0:
            raise ZeroDivisionError("b is 0")
        return a // b

    answering = _Answering(address, answer, "test-channel")
    try:
        calls = _Calls(address)
        assert [calls.call(7, 2), calls.call(9, 3)] == [3, 3]
        with pytest.raises(WorkerFailure, match="ZeroDivisionError: b is 0"):
            calls.call(1, 0)
        assert calls.call(8, 4) == 2  # the connection serves on after a failed call
    finally:
        answering.close()


def test_a_channel_refuses_a_peer_without_its_key(address: _Address) -> None:
    answering = _Answering(address, lambda: "secret", "test-channel")
    try:
        with pytest.raises(AuthenticationError):
            Client(address.path, family="AF_UNIX", authkey=b"x" * 32)
        assert _Calls(address).call() == "secret"
    finally:
        answering.close()


def test_a_caller_waits_for_a_channel_that_is_starting_but_not_for_one_that_has_gone(address: _Address) -> None:
    calls = _Calls(address, connect_timeout=10)
    opened: list[_Answering] = []
    threading.Timer(0.3, lambda: opened.append(_Answering(address, lambda: "up", "test-channel"))).start()
    assert calls.call() == "up"  # the socket did not exist when the call began
    opened[0].close()
    Path(address.path).unlink(missing_ok=True)
    late = _Calls(address, connect_timeout=10)
    late._reached = True
    started = time.monotonic()
    with pytest.raises(FileNotFoundError):
        late.call()
    assert time.monotonic() - started < 5


def test_the_workers_transport_answers_only_for_the_local_endpoint(address: _Address) -> None:
    transport = ChannelTransport("http://127.0.0.1:4566", _Calls(address))
    for url in ("https://dynamodb.us-east-1.amazonaws.com/", "http://127.0.0.1:4567/", "http://127.0.0.1:45660/"):
        assert transport(SimpleNamespace(url=url, method="POST", headers={}, body=b"")) is None


@pytest.mark.parametrize(("configured", "cores", "expected"), [("", 2, 4), ("", 8, 8), ("", 1, 0), ("0", 8, 0), ("3", 2, 3), (" ", 4, 8)])
def test_the_default_worker_count(monkeypatch: pytest.MonkeyPatch, configured: str, cores: int, expected: int) -> None:
    monkeypatch.setenv(workers.WORKERS_ENV, configured)
    monkeypatch.setattr(workers.os, "cpu_count", lambda: cores)
    assert default_worker_count() == expected


def version(number: int) -> ConfigVersion:
    return ConfigVersion(
        version=number, config=TenantConfig(), created_at=datetime(2026, 12, 5, tzinfo=UTC), created_by="test", mode="default"
    )


def test_a_worker_forgets_the_config_of_a_tenant_written_since_and_keeps_the_others() -> None:
    writes, cache = RegistryWrites(), ConfigCache()
    kept = KeptConfigs(cache)
    writes.count({"ta"})  # both tenants' configs were written before the worker's first invocations
    writes.count({"tb"})
    for tenant_id in ("ta", "tb"):
        kept.before_invocation(writes.stamp(tenant_id))
        cache.store(tenant_id, version(1))

    writes.count({"ta"})  # another process writes a's config
    kept.before_invocation(writes.stamp("tb"))
    assert cache.fresh("tb") is not None
    assert cache.fresh("ta") is not None  # not a's invocation: a's entry waits for a's own request to be checked
    kept.before_invocation(writes.stamp("ta"))
    assert cache.fresh("ta") is None
    assert cache.fresh("tb") is not None
    cache.store("ta", version(2))
    kept.before_invocation(writes.stamp("ta"))  # nothing written since: kept
    assert cache.fresh("ta") is not None


def test_a_write_outside_every_tenant_or_an_operators_request_after_any_write_forgets_every_config() -> None:
    writes, cache = RegistryWrites(), ConfigCache()
    kept = KeptConfigs(cache)
    for tenant_id in ("ta", "tb"):
        kept.before_invocation(writes.stamp(tenant_id))
        cache.store(tenant_id, version(1))
    writes.count({None})  # an operator key's item
    kept.before_invocation(writes.stamp("ta"))
    assert (cache.fresh("ta"), cache.fresh("tb")) == (None, None)

    for tenant_id in ("ta", "tb"):
        cache.store(tenant_id, version(1))
    kept.before_invocation(writes.stamp(None))  # an operator's request, nothing written since the last forgetting
    assert cache.fresh("tb") is not None
    writes.count({"tb"})
    kept.before_invocation(writes.stamp(None))  # it may read any tenant's config
    assert (cache.fresh("ta"), cache.fresh("tb")) == (None, None)
