"""The asynchronous client. This file is the one source of both clients: `_sync_client.py` is generated
from it by `python clients/python/raas_client/_unasync.py` (async/await removed, `Async` names dropped), and a unit test
fails when the generated file is out of date. Shared, I/O-free logic lives in `_core.py`."""

from __future__ import annotations

import builtins
import mimetypes
import os
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import httpx
from pydantic import BaseModel

from raas_client import _core, errors
from raas_client import models as m
from raas_client._core import AsyncSleep, Page, PreparedCall, ProgressCallback, RetryPolicy
from raas_client.operations import OPERATIONS, Operation

M = TypeVar("M", bound=BaseModel)


class AsyncTransport:
    """Sends prepared calls with retries and turns error answers into exceptions."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: AsyncSleep | None = None,
    ) -> None:
        self.base_url, self.api_key = _core.settings_from_env(base_url, api_key)
        self.retry = retry or RetryPolicy()
        self._owns_http = http_client is None
        # The key goes on each API request, never on the client: presigned storage URLs must not receive it.
        self.http = http_client or httpx.AsyncClient(timeout=timeout, transport=transport, headers={"User-Agent": _core.USER_AGENT})
        self._sleep: AsyncSleep = sleep or _core.async_sleep

    def with_api_key(self, api_key: str | None) -> AsyncTransport:
        """The same connection pool and retry policy, another caller."""
        clone = AsyncTransport.__new__(AsyncTransport)
        clone.__dict__.update(self.__dict__)
        clone.api_key, clone._owns_http = api_key, False
        return clone

    async def sleep(self, seconds: float) -> None:
        await self._sleep(seconds)

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    def _request(self, call: PreparedCall) -> httpx.Request:
        return self.http.build_request(
            call.method,
            self.base_url + call.path,
            params=call.params,
            headers={**_core.auth_headers(self.api_key), **call.headers},
            content=call.content,
        )

    async def send(self, call: PreparedCall) -> httpx.Response:
        """The first successful answer (body read), after retries; raises the mapped error otherwise."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self.http.send(self._request(call))
            except httpx.TransportError as exc:
                wait = self.retry.wait_after_transport_error(attempt, exc, safe_to_retry=call.operation.safe_to_retry)
                if wait is None:
                    raise errors.TransportError(f"{call.method} {call.path}: {type(exc).__name__}: {exc}") from exc
                await self._sleep(wait)
                continue
            if response.status_code < 400:
                return response
            error = _core.error_for(response, response.content)
            wait = self.retry.wait_after_error(attempt, error, idempotency_key_sent=call.idempotency_key_sent)
            if wait is None:
                raise error
            await self._sleep(wait)

    async def call(self, name: str, **kwargs: Any) -> Any:
        return _core.json_body(await self.send(_core.prepare(OPERATIONS[name], **kwargs)))

    async def call_model(self, name: str, model: type[M], **kwargs: Any) -> M:
        _core.check_model(name, model)
        return _core.parse_model(model, await self.call(name, **kwargs))

    async def call_list(self, name: str, model: type[M], **kwargs: Any) -> list[M]:
        _core.check_model(name, model)
        items, _ = _core.page_items(OPERATIONS[name], await self.call(name, **kwargs))
        return [_core.parse_model(model, item) for item in items]

    async def events(self, call: PreparedCall) -> AsyncIterator[m.StreamEvent]:
        """The typed events of a streamed answer as they arrive; an `error` event raises its exception.

        Retries (429/503 before the stream starts) send the same `Idempotency-Key`. Once events have
        arrived nothing is retried: a broken stream raises TransportError."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self.http.send(self._request(call), stream=True)
            except httpx.TransportError as exc:
                wait = self.retry.wait_after_transport_error(attempt, exc, safe_to_retry=call.operation.safe_to_retry)
                if wait is None:
                    raise errors.TransportError(f"{call.method} {call.path}: {type(exc).__name__}: {exc}") from exc
                await self._sleep(wait)
                continue
            try:
                if response.status_code >= 400:
                    error = _core.error_for(response, await response.aread())
                    wait = self.retry.wait_after_error(attempt, error, idempotency_key_sent=call.idempotency_key_sent)
                    if wait is None:
                        raise error
                else:
                    _core.check_event_stream(response)
                    request_id = response.headers.get("X-Request-Id")
                    parser = _core.SseParser()
                    try:
                        async for line in response.aiter_lines():
                            completed = parser.feed(line)
                            event = _core.stream_event(*completed, request_id=request_id) if completed else None
                            if event is not None:
                                yield event
                    except httpx.TransportError as exc:
                        raise errors.TransportError(f"the event stream broke: {type(exc).__name__}: {exc}") from exc
                    completed = parser.close()
                    event = _core.stream_event(*completed, request_id=request_id) if completed else None
                    if event is not None:
                        yield event
                    return
            finally:
                await response.aclose()
            await self._sleep(wait)

    async def put_file(self, ticket: m.UploadTicket, path: Path, size: int, progress: ProgressCallback | None) -> None:
        """PUTs the file to the presigned URL with exactly the headers the ticket lists, streamed in chunks.

        Content-Length is set, so the body is not sent chunked: presigned S3 PUTs need the length
        (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html, "Content-Length")."""
        attempt = 0
        while True:
            attempt += 1
            headers = {**ticket.headers, "Content-Length": str(size)}
            try:
                response = await self.http.request(
                    ticket.method, ticket.upload_url, content=_file_chunks(path, size, progress), headers=headers
                )
            except httpx.TransportError as exc:
                # A PUT of the same bytes to the same key is idempotent: retry it whole.
                wait = self.retry.wait_after_transport_error(attempt, exc, safe_to_retry=True)
                if wait is None:
                    raise errors.TransportError(f"upload of {path.name}: {type(exc).__name__}: {exc}") from exc
                await self._sleep(wait)
                continue
            if response.status_code < 300:
                return
            error = _core.storage_error(response)
            wait = self.retry.wait_after_error(attempt, error, idempotency_key_sent=True) if response.status_code >= 500 else None
            if wait is None:
                raise error
            await self._sleep(wait)


async def _file_chunks(path: Path, size: int, progress: ProgressCallback | None) -> AsyncIterator[bytes]:
    sent = 0
    if progress:
        progress(0, size)
    with path.open("rb") as handle:
        while chunk := handle.read(_core.UPLOAD_CHUNK_BYTES):
            sent += len(chunk)
            yield chunk
            if progress:
                progress(sent, size)


class AsyncPaginator(Generic[M]):
    """Every item of a `limit`/`cursor` list, fetching pages as iteration reaches them.

    `async for item in paginator` walks all items; `paginator.pages()` yields whole pages (with their
    `next_cursor`, to resume later with `cursor=`); `await paginator.to_list()` collects them."""

    def __init__(
        self,
        transport: AsyncTransport,
        name: str,
        model: type[M],
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
    ) -> None:
        _core.check_model(name, model)
        self._transport, self._operation, self._name, self._model = transport, OPERATIONS[name], name, model
        self._path_params = dict(path_params or {})
        self._params = {**(params or {}), "limit": page_size}
        self._cursor = cursor

    def __aiter__(self) -> AsyncIterator[M]:
        return self._items()

    async def _items(self) -> AsyncIterator[M]:
        async for page in self.pages():
            for item in page.items:
                yield item

    async def pages(self) -> AsyncIterator[Page[M]]:
        cursor = self._cursor
        while True:
            data = await self._transport.call(self._name, path_params=self._path_params, params={**self._params, "cursor": cursor})
            items, cursor = _core.page_items(self._operation, data)
            yield Page([_core.parse_model(self._model, item) for item in items], cursor, data)
            if cursor is None:
                return

    async def to_list(self, max_items: int | None = None) -> list[M]:
        found: list[M] = []
        async for item in self:
            found.append(item)
            if max_items is not None and len(found) >= max_items:
                break
        return found


class _AsyncResource:
    def __init__(self, transport: AsyncTransport) -> None:
        self._t = transport


class AsyncTenants(_AsyncResource):
    """Operator routes: needs an operator key (`raasop_…`)."""

    async def create(self, name: str, tier: m.Tier = "smb", *, idempotency_key: str | None = None) -> m.TenantCreated:
        """A new tenant and its first admin key (`api_key`, shown this once)."""
        body = m.CreateTenantRequest(name=name, tier=tier)
        return await self._t.call_model("tenants.create", m.TenantCreated, body=body, idempotency_key=idempotency_key)

    def list(
        self, *, status: str | None = None, tier: str | None = None, q: str | None = None, page_size: int | None = None
    ) -> AsyncPaginator[m.Tenant]:
        return AsyncPaginator(self._t, "tenants.list", m.Tenant, params={"status": status, "tier": tier, "q": q}, page_size=page_size)

    async def get(self, tenant_id: str) -> m.Tenant:
        return await self._t.call_model("tenants.get", m.Tenant, path_params={"tenant_id": tenant_id})

    async def update(
        self, tenant_id: str, *, name: str | None = None, tier: m.Tier | None = None, annual_billing: bool | None = None
    ) -> m.Tenant:
        fields = {k: v for k, v in {"name": name, "tier": tier, "annual_billing": annual_billing}.items() if v is not None}
        body = m.UpdateTenantRequest(**fields)
        return await self._t.call_model("tenants.update", m.Tenant, path_params={"tenant_id": tenant_id}, body=body)

    async def suspend(self, tenant_id: str) -> m.Tenant:
        return await self._t.call_model("tenants.suspend", m.Tenant, path_params={"tenant_id": tenant_id})

    async def resume(self, tenant_id: str, reason: Literal["operator", "payment"] = "operator") -> m.Tenant:
        body = m.ResumeTenantRequest(reason=reason)
        return await self._t.call_model("tenants.resume", m.Tenant, path_params={"tenant_id": tenant_id}, body=body)

    async def delete(self, tenant_id: str, *, export_first: bool = False) -> m.Tenant:
        body = m.DeleteTenantRequest(export_first=export_first)
        return await self._t.call_model("tenants.delete", m.Tenant, path_params={"tenant_id": tenant_id}, body=body)

    async def timeline(self, tenant_id: str) -> builtins.list[m.TimelineEvent]:
        """The tenant's lifecycle, oldest first: created, provisioned, suspended, tier changes, deletion."""
        return await self._t.call_list("tenants.timeline", m.TimelineEvent, path_params={"tenant_id": tenant_id})

    async def tier_preview(self, tenant_id: str, tier: m.Tier) -> m.TierPreview:
        """What moving to `tier` would clamp in the tenant's configuration (nothing changes)."""
        body = m.TierPreviewRequest(tier=tier)
        return await self._t.call_model("tenants.tier_preview", m.TierPreview, path_params={"tenant_id": tenant_id}, body=body)


class AsyncKeys(_AsyncResource):
    async def create(self, name: str, role: m.Role = "reader") -> m.KeyCreated:
        """A new key (`api_key`, shown this once)."""
        return await self._t.call_model("keys.create", m.KeyCreated, body=m.CreateKeyRequest(name=name, role=role))

    async def list(self) -> list[m.ApiKey]:
        return await self._t.call_list("keys.list", m.ApiKey)

    async def revoke(self, key_id: str) -> None:
        await self._t.call("keys.revoke", path_params={"key_id": key_id})


class AsyncConfig(_AsyncResource):
    async def get(self) -> m.ConfigView:
        return await self._t.call_model("config.get", m.ConfigView)

    async def update(self, changes: Mapping[str, Any] | None = None, *, if_match: int | None = None, **fields: Any) -> m.ConfigView:
        """Merge update (PATCH): the fields given change, the rest keep; `branding`, `chunking` and `limits` merge field by field."""
        body = m.ConfigPatch.model_validate({**(changes or {}), **fields})
        return await self._t.call_model("config.update", m.ConfigView, body=body, headers=_if_match(if_match))

    async def replace(self, config: Mapping[str, Any], *, if_match: int | None = None) -> m.ConfigView:
        """Replace (PUT): every field not given resets to its default."""
        body = m.ConfigPatch.model_validate(dict(config))
        return await self._t.call_model("config.replace", m.ConfigView, body=body, headers=_if_match(if_match))

    def versions(self, *, page_size: int | None = None) -> AsyncPaginator[m.VersionSummary]:
        """Every version, newest first."""
        return AsyncPaginator(self._t, "config.versions", m.VersionSummary, page_size=page_size)

    async def version(self, version: int) -> m.VersionDetail:
        """One version with its whole configuration (0 = the defaults)."""
        return await self._t.call_model("config.version", m.VersionDetail, path_params={"version": str(version)})

    async def rollback(self, version: int) -> m.ConfigView:
        """Restores `version` (0 = the defaults) as a new version."""
        return await self._t.call_model("config.rollback", m.ConfigView, body=m.RollbackRequest(version=version))

    async def schema(self) -> m.ConfigSchema:
        """The configuration's JSON schema with the bounds of the tenant's tier."""
        return await self._t.call_model("config.schema", m.ConfigSchema)

    async def validate(self, changes: Mapping[str, Any]) -> m.ConfigValidation:
        """What a merge update would produce (and the rendered prompt), without saving it."""
        return await self._t.call_model("config.validate", m.ConfigValidation, body=m.ConfigPatch.model_validate(dict(changes)))


def _if_match(version: int | None) -> dict[str, str]:
    return {"If-Match": str(version)} if version is not None else {}


class AsyncDocuments(_AsyncResource):
    async def create(
        self,
        title: str,
        *,
        text: str | None = None,
        content_base64: str | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        source_uri: str | None = None,
        idempotency_key: str | None = None,
    ) -> m.DocumentAccepted:
        """An inline document (`text`, or `content_base64` with `content_type`); 10 MiB per request at most."""
        given = {"text": text, "content_base64": content_base64, "content_type": content_type, "source_uri": source_uri}
        body = m.InlineDocumentRequest(title=title, metadata=dict(metadata or {}), **{k: v for k, v in given.items() if v is not None})
        return await self._t.call_model("documents.create", m.DocumentAccepted, body=body, idempotency_key=idempotency_key)

    async def create_upload(
        self,
        filename: str,
        content_type: str,
        size: int,
        *,
        title: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        source_uri: str | None = None,
        idempotency_key: str | None = None,
    ) -> m.UploadTicket:
        """A presigned PUT for a file: send the bytes to `upload_url` with exactly `headers` (or use `upload`)."""
        optional = {k: v for k, v in {"title": title, "source_uri": source_uri}.items() if v is not None}
        body = m.UploadRequest(filename=filename, content_type=content_type, size=size, metadata=dict(metadata or {}), **optional)
        return await self._t.call_model("documents.create_upload", m.UploadTicket, body=body, idempotency_key=idempotency_key)

    async def upload(
        self,
        path: str | os.PathLike[str],
        *,
        title: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        source_uri: str | None = None,
        content_type: str | None = None,
        progress: ProgressCallback | None = None,
        wait: bool = True,
        timeout: float = 300.0,
        idempotency_key: str | None = None,
    ) -> m.Document:
        """Uploads a file: asks for a presigned URL, PUTs the bytes in chunks (calling `progress(sent, total)`),
        then, with `wait`, polls until the document is `indexed` (DocumentFailedError if it fails,
        WaitTimeoutError after `timeout` seconds). Returns the document as last read."""
        file = Path(path)
        size = file.stat().st_size
        kind = content_type or guess_content_type(file)
        ticket = await self.create_upload(
            file.name, kind, size, title=title, metadata=metadata, source_uri=source_uri, idempotency_key=idempotency_key
        )
        await self._t.put_file(ticket, file, size, progress)
        if wait:
            return await self.wait_indexed(ticket.document_id, timeout=timeout)
        return await self.get(ticket.document_id)

    async def wait_indexed(self, document_id: str, *, timeout: float = 300.0, poll_interval: float = 0.2) -> m.Document:
        """Polls the document, backing off to 2 s between reads, until it is `indexed`."""
        deadline = time.monotonic() + timeout
        delay = poll_interval
        while True:
            document = await self.get(document_id)
            if document.status == "indexed":
                return document
            if document.status in {"failed", "deleting"}:
                reason = document.error or f"the document is {document.status}"
                raise errors.DocumentFailedError(reason, document_id=document_id)
            if time.monotonic() + delay > deadline:
                raise errors.WaitTimeoutError(f"document {document_id} is still {document.status} after {timeout:g} s")
            await self._t.sleep(delay)
            delay = min(2.0, delay * 1.5)

    def list(self, *, status: str | None = None, page_size: int | None = None) -> AsyncPaginator[m.Document]:
        return AsyncPaginator(self._t, "documents.list", m.Document, params={"status": status}, page_size=page_size)

    async def get(self, document_id: str) -> m.Document:
        return await self._t.call_model("documents.get", m.Document, path_params={"document_id": document_id})

    async def delete(self, document_id: str) -> None:
        await self._t.call("documents.delete", path_params={"document_id": document_id})

    def chunks(self, document_id: str, *, page_size: int | None = None) -> AsyncPaginator[m.ChunkView]:
        """The document's chunks, in order."""
        return AsyncPaginator(self._t, "documents.chunks", m.ChunkView, path_params={"document_id": document_id}, page_size=page_size)


class AsyncConversations(_AsyncResource):
    async def create(self, title: str | None = None) -> m.Conversation:
        body = m.CreateConversationRequest(title=title) if title is not None else m.CreateConversationRequest()
        return await self._t.call_model("conversations.create", m.Conversation, body=body)

    def list(self, *, page_size: int | None = None) -> AsyncPaginator[m.Conversation]:
        return AsyncPaginator(self._t, "conversations.list", m.Conversation, page_size=page_size)

    async def get(self, conversation_id: str) -> m.Conversation:
        data = await self._t.call("conversations.messages", path_params={"conversation_id": conversation_id}, params={"limit": 1})
        return _core.parse_model(m.Conversation, (data or {}).get("conversation"))

    def messages(self, conversation_id: str, *, page_size: int | None = None) -> AsyncPaginator[m.ConversationMessage]:
        """The messages, oldest first."""
        return AsyncPaginator(
            self._t, "conversations.messages", m.ConversationMessage, path_params={"conversation_id": conversation_id}, page_size=page_size
        )

    async def delete(self, conversation_id: str) -> None:
        await self._t.call("conversations.delete", path_params={"conversation_id": conversation_id})

    async def ask(
        self,
        conversation_id: str,
        query: str,
        *,
        top_k: int | None = None,
        alpha: float | None = None,
        filters: Mapping[str, Any] | None = None,
        rerank: bool | None = None,
        idempotency_key: str | None = None,
    ) -> m.ConversationAnswer:
        body = _query_body(query, top_k, alpha, filters, rerank)
        return await self._t.call_model(
            "conversations.ask",
            m.ConversationAnswer,
            path_params={"conversation_id": conversation_id},
            body=body,
            idempotency_key=idempotency_key,
        )

    def ask_stream(
        self,
        conversation_id: str,
        query: str,
        *,
        top_k: int | None = None,
        alpha: float | None = None,
        filters: Mapping[str, Any] | None = None,
        rerank: bool | None = None,
        idempotency_key: str | None = None,
    ) -> AsyncIterator[m.StreamEvent]:
        """The answer as events: `RetrievalEvent`, `DeltaEvent`s, then `DoneEvent` (with `conversation_id`, `message_ids`)."""
        call = _core.prepare(
            OPERATIONS["conversations.ask"],
            path_params={"conversation_id": conversation_id},
            body=_query_body(query, top_k, alpha, filters, rerank),
            idempotency_key=idempotency_key,
            stream=True,
        )
        return self._t.events(call)


def _query_body(
    query: str, top_k: int | None, alpha: float | None, filters: Mapping[str, Any] | None, rerank: bool | None
) -> m.QueryRequest:
    given = {"top_k": top_k, "alpha": alpha, "filters": dict(filters) if filters is not None else None, "rerank": rerank}
    return m.QueryRequest(query=query, **{k: v for k, v in given.items() if v is not None})


class AsyncFeedback(_AsyncResource):
    async def give(self, query_id: str, rating: m.Rating, comment: str | None = None) -> m.Feedback:
        body = m.FeedbackRequest(rating=rating, comment=comment) if comment is not None else m.FeedbackRequest(rating=rating)
        return await self._t.call_model("feedback.give", m.Feedback, path_params={"query_id": query_id}, body=body)

    def list(self, *, rating: m.Rating | None = None, page_size: int | None = None) -> AsyncPaginator[m.Feedback]:
        return AsyncPaginator(self._t, "feedback.list", m.Feedback, params={"rating": rating}, page_size=page_size)

    async def summary(self) -> m.FeedbackSummary:
        return await self._t.call_model("feedback.summary", m.FeedbackSummary)


class AsyncUsage(_AsyncResource):
    async def get(self, period: str | None = None) -> m.TenantUsage:
        """The tenant's usage for `period` (`YYYY-MM`, default the current month)."""
        return await self._t.call_model("usage.get", m.TenantUsage, params={"period": period})

    async def daily(self, period: str | None = None) -> m.DailyUsage:
        """Usage per day of `period` (`YYYY-MM`, default the current month)."""
        return await self._t.call_model("usage.daily", m.DailyUsage, params={"period": period})

    def operator(self, period: str | None = None, *, page_size: int | None = None) -> AsyncPaginator[m.OperatorUsageRow]:
        """Every tenant's usage for the month (operator key)."""
        return AsyncPaginator(self._t, "operator_usage.list", m.OperatorUsageRow, params={"period": period}, page_size=page_size)


class AsyncInvoices(_AsyncResource):
    def list(self, *, page_size: int | None = None) -> AsyncPaginator[m.Invoice]:
        return AsyncPaginator(self._t, "invoices.list", m.Invoice, page_size=page_size)

    async def get(self, period: str) -> m.Invoice:
        return await self._t.call_model("invoices.get", m.Invoice, path_params={"period": period})


class AsyncAudit(_AsyncResource):
    def list(self, *, page_size: int | None = None) -> AsyncPaginator[m.AuditEntry]:
        return AsyncPaginator(self._t, "audit.list", m.AuditEntry, page_size=page_size)


class AsyncExport(_AsyncResource):
    async def create(self, *, idempotency_key: str | None = None) -> m.ExportResult:
        """A bundle of the tenant's data behind a presigned link (kept 7 days, billed as storage)."""
        return await self._t.call_model("export.create", m.ExportResult, idempotency_key=idempotency_key)


class AsyncPricing(_AsyncResource):
    async def estimate(
        self, tier: m.Tier, *, queries: int = 0, storage_gb: float | str = 0, api_calls: int = 0, annual: bool = False
    ) -> m.Quote:
        body = m.EstimateRequest(tier=tier, queries=queries, storage_gb=storage_gb, api_calls=api_calls, annual=annual)
        return await self._t.call_model("pricing.estimate", m.Quote, body=body)


class AsyncWebhooks(_AsyncResource):
    async def create(self, url: str, events: Iterable[str], description: str = "") -> m.EndpointCreated:
        """A new endpoint and its signing secret (shown this once)."""
        body = m.CreateWebhookRequest(url=url, events=[*events], description=description)
        return await self._t.call_model("webhooks.create", m.EndpointCreated, body=body)

    async def list(self) -> list[m.WebhookEndpoint]:
        return await self._t.call_list("webhooks.list", m.WebhookEndpoint)

    async def get(self, endpoint_id: str) -> m.WebhookEndpoint:
        return await self._t.call_model("webhooks.get", m.WebhookEndpoint, path_params={"endpoint_id": endpoint_id})

    async def update(
        self,
        endpoint_id: str,
        *,
        url: str | None = None,
        events: Iterable[str] | None = None,
        description: str | None = None,
        enabled: bool | None = None,
    ) -> m.WebhookEndpoint:
        given = {"url": url, "events": [*events] if events is not None else None, "description": description, "enabled": enabled}
        body = m.UpdateWebhookRequest(**{k: v for k, v in given.items() if v is not None})
        return await self._t.call_model("webhooks.update", m.WebhookEndpoint, path_params={"endpoint_id": endpoint_id}, body=body)

    async def delete(self, endpoint_id: str) -> None:
        await self._t.call("webhooks.delete", path_params={"endpoint_id": endpoint_id})

    async def rotate_secret(self, endpoint_id: str) -> m.SecretRotated:
        return await self._t.call_model("webhooks.rotate_secret", m.SecretRotated, path_params={"endpoint_id": endpoint_id})

    async def test(self, endpoint_id: str) -> m.WebhookDelivery:
        return await self._t.call_model("webhooks.test", m.WebhookDelivery, path_params={"endpoint_id": endpoint_id})

    def deliveries(self, endpoint_id: str, *, page_size: int | None = None) -> AsyncPaginator[m.WebhookDelivery]:
        return AsyncPaginator(
            self._t, "webhooks.deliveries", m.WebhookDelivery, path_params={"endpoint_id": endpoint_id}, page_size=page_size
        )

    async def delivery(self, endpoint_id: str, delivery_id: str) -> m.WebhookDelivery:
        path = {"endpoint_id": endpoint_id, "delivery_id": delivery_id}
        return await self._t.call_model("webhooks.delivery", m.WebhookDelivery, path_params=path)

    async def replay(self, endpoint_id: str, delivery_id: str) -> m.WebhookDelivery:
        path = {"endpoint_id": endpoint_id, "delivery_id": delivery_id}
        return await self._t.call_model("webhooks.replay", m.WebhookDelivery, path_params=path)

    async def event_types(self) -> builtins.list[m.EventTypeInfo]:  # `list` is a method of this class
        return await self._t.call_list("webhooks.event_types", m.EventTypeInfo)


class AsyncClient:
    """The raas API, asynchronously. `base_url` and `api_key` default to `RAAS_URL` and `RAAS_API_KEY`.

    Use it as an async context manager (or call `aclose()`); `with_api_key()` gives a client for
    another key over the same connections."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: AsyncSleep | None = None,
        _transport: AsyncTransport | None = None,
    ) -> None:
        self._t = _transport or AsyncTransport(
            base_url, api_key, timeout=timeout, retry=retry, http_client=http_client, transport=transport, sleep=sleep
        )
        self.tenants = AsyncTenants(self._t)
        self.keys = AsyncKeys(self._t)
        self.config = AsyncConfig(self._t)
        self.documents = AsyncDocuments(self._t)
        self.conversations = AsyncConversations(self._t)
        self.feedback = AsyncFeedback(self._t)
        self.usage = AsyncUsage(self._t)
        self.invoices = AsyncInvoices(self._t)
        self.audit = AsyncAudit(self._t)
        self.export = AsyncExport(self._t)
        self.pricing = AsyncPricing(self._t)
        self.webhooks = AsyncWebhooks(self._t)

    @property
    def base_url(self) -> str:
        return self._t.base_url

    def with_api_key(self, api_key: str | None) -> AsyncClient:
        return AsyncClient(_transport=self._t.with_api_key(api_key))

    async def aclose(self) -> None:
        await self._t.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def health(self) -> m.Health:
        return await self._t.call_model("health", m.Health)

    async def me(self) -> m.Me:
        """Who the key is: role, tenant, tier, key."""
        return await self._t.call_model("me", m.Me)

    async def query(
        self,
        query: str,
        *,
        top_k: int | None = None,
        alpha: float | None = None,
        filters: Mapping[str, Any] | None = None,
        rerank: bool | None = None,
        idempotency_key: str | None = None,
    ) -> m.QueryResponse:
        """A cited answer."""
        body = _query_body(query, top_k, alpha, filters, rerank)
        return await self._t.call_model("query", m.QueryResponse, body=body, idempotency_key=idempotency_key)

    def ask_stream(
        self,
        query: str,
        *,
        top_k: int | None = None,
        alpha: float | None = None,
        filters: Mapping[str, Any] | None = None,
        rerank: bool | None = None,
        idempotency_key: str | None = None,
    ) -> AsyncIterator[m.StreamEvent]:
        """A cited answer as it is generated: `RetrievalEvent` (citations), `DeltaEvent`s (text), then `DoneEvent`.

        An `error` event raises its exception. Closing the iterator early closes the connection, which
        stops the generation on the server."""
        body = _query_body(query, top_k, alpha, filters, rerank)
        return self._t.events(_core.prepare(OPERATIONS["query"], body=body, idempotency_key=idempotency_key, stream=True))

    async def search(
        self,
        query: str,
        *,
        top_k: int | None = None,
        alpha: float | None = None,
        filters: Mapping[str, Any] | None = None,
        rerank: bool | None = None,
        idempotency_key: str | None = None,
    ) -> m.SearchResponse:
        """Ranked chunks without generation."""
        body = _query_body(query, top_k, alpha, filters, rerank)
        return await self._t.call_model("search", m.SearchResponse, body=body, idempotency_key=idempotency_key)

    def queries(self, *, page_size: int | None = None) -> AsyncPaginator[m.QueryHistoryEntry]:
        """Query history, newest first."""
        return AsyncPaginator(self._t, "queries.list", m.QueryHistoryEntry, page_size=page_size)


def guess_content_type(path: Path) -> str:
    """The content type to declare for a file (the server checks the bytes against it)."""
    known = _core.CONTENT_TYPES.get(path.suffix.lower())
    return known or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


__all__ = ["AsyncClient", "AsyncPaginator", "AsyncTransport", "Operation"]
