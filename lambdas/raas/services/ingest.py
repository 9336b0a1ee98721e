"""Ingestion of uploaded objects: extract, chunk, embed, index, record status and usage.

An SQS batch is ingested together (`ingest_batch`): each document is claimed, read and chunked on its own,
and a tenant's documents then share one embedding call, the tenant-status reads around their index writes
and one answer-generation bump. The shared reads keep their meaning for every document of the wave (each
document's write lies between the two), so the argument below holds per document as before.

Runs from the S3 event (through SQS), so it may see the same object twice: a document that is
already `indexed` or `failed` is left alone, and re-running a `processing` one writes its chunks
again and removes what the earlier run wrote. A failure never leaves chunks behind: the ids the
engine gave the chunks are kept (`EngineReceipts`) so they can be removed even before a search
engine with a refresh interval can find them.

Ordering with deletions, which run in other Lambdas at the same time:
- the document: each attempt claims the record with its own token and marks it `indexed` (or `failed`) only
  under the condition that it still holds it (adapters/documents.py). A delete tombstones the record first, so
  an attempt whose mark fails knows the document went while it wrote, and removes its chunks itself
  (`DocumentRemover` in services/documents.py has the other half of the argument). The mark also counts the
  document's usage, in the same transaction (`mark_indexed_and_count`): a document is counted exactly when it
  becomes `indexed`, and a mark that fails counts nothing.
- the tenant: its deletion marks it `deleting` before it drops the index. An attempt reads the tenant's status
  with a strongly consistent read (it reflects every write that succeeded before it:
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html) right
  before it touches the index, so it does not re-create a dropped one, and again after writing (for a wave: before
  its first write and after its last): if the tenant
  was live then, the drop comes later and takes the chunks with it; if not, the attempt drops the index itself,
  since its write may have re-created it (OpenSearch creates a missing index on the first write to it:
  https://docs.opensearch.org/latest/im-plugin/). A redelivered event for a tenant being deleted drops it too,
  so an attempt that crashed after writing leaves nothing once its message comes back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from aws_lambda_powertools import Logger

from raas.domain import catalog
from raas.domain.chunking import chunk_text
from raas.domain.documents import Chunk, Document, DocumentStatus, chunk_id, content_hash
from raas.domain.errors import GatewayTimeout, NotFound, PayloadTooLarge, ServiceUnavailable
from raas.domain.events import DocumentFailed, DocumentIndexed
from raas.domain.extraction import ExtractionBudget, ExtractionError, extract_text
from raas.domain.ports import DocumentStore, Embedder, EventPublisher, ObjectStore, SearchIndex, TenantStore, VersionConflict
from raas.domain.tenants import Tenant, TenantStatus
from raas.domain.usage import UsageEvent
from raas.services.config import ConfigService
from raas.services.documents import DocumentRemover, EngineReceipts, object_key
from raas.services.notify import announce

logger = Logger(service="raas")
EMBED_BATCH = 128
# Documents per ingest invocation: the SQS event source's batch size (stacks/api.py) and the local pump's
# (local/events.py). A batch's documents of one tenant share an embedding call and the reads around their writes.
INGEST_BATCH_SIZE = 5
TRANSIENT = (ServiceUnavailable, GatewayTimeout)
# The ingest queue's maxReceiveCount (stacks/data.py; local/events.py): how many deliveries a document
# of a suspended tenant waits through. tests/infra/test_ingest_redelivery.py holds the two together.
MAX_DELIVERIES = 5
SUSPENDED_REASON = "waiting: the tenant is suspended; indexing resumes when it is resumed"


Outcome = Document | None | Exception  # an ingested document's end, or the error that brings its event back
T = TypeVar("T")


def _outcome(step: Callable[..., T], *args: Any) -> T | Exception:
    """What `step(*args)` returns, or the error it raised: one document's error must not stop the rest of its batch."""
    try:
        return step(*args)
    except Exception as exc:  # noqa: BLE001 - kept as that document's outcome (ingest_batch), raised for one alone
        return exc


@dataclass
class _Attempt:
    """One document from its claim to its mark: what the steps its wave shares need of it."""

    position: int  # in the batch
    document: Document
    token: str  # the claim's attempt token
    digest: str | None
    size: int = 0
    chunks: list[Chunk] = field(default_factory=list)
    vectors: list[list[float]] = field(default_factory=list)
    previous: Document | None = None
    engine_ids: tuple[str, ...] = ()
    marked: bool = False  # `indexed` by this attempt
    last_delivery: bool = False  # the queue sends the event to its dead-letter queue if this attempt gives it back


class WaitingForResume(Exception):
    """Raised so the queue delivers the event again later: its tenant is suspended."""


class DocumentsWaiting(DocumentStore, Protocol):
    def wait_for_resume(self, tenant_id: str, document_id: str, reason: str) -> int:
        """Keeps the document `queued` with `reason`; the number of deliveries it has waited through."""


class IngestService:
    def __init__(
        self,
        documents: DocumentsWaiting,
        objects: ObjectStore,
        search: SearchIndex,
        embedder: Embedder,
        configs: ConfigService,
        tenants: TenantStore,
        extract: Callable[[bytes, str, ExtractionBudget], str] = extract_text,
        events: EventPublisher | None = None,
    ):
        self.events = events  # document.indexed / document.failed for tenants' webhooks (best effort)
        self.extract = extract  # the composition root passes one that runs risky formats in a memory-capped child
        self.documents = documents
        self.objects = objects
        self.search = search
        self.receipts = EngineReceipts(objects, search)
        self.remover = DocumentRemover(documents, objects, search)
        self.embedder = embedder
        self.configs = configs
        self.tenants = tenants

    def ingest(self, tenant_id: str, document_id: str) -> Document | None:
        """One document: `ingest_batch` of one, its error raised."""
        (outcome,) = self.ingest_batch([(tenant_id, document_id)])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def ingest_batch(self, documents: Sequence[tuple[str, str]], last_deliveries: Collection[int] = ()) -> list[Outcome]:
        """Each (tenant id, document id)'s outcome, in order: the document as it ends up (None when its tenant went),
        or the error that should bring its event back (transient, or a suspended tenant's `WaitingForResume`).
        `last_deliveries` are the positions whose event the queue delivers for the last time: a transient error
        there fails the claimed document with its reason instead (`_settle`), since no one reads the dead-letter queue.

        Each tenant's documents go through in waves: each is claimed, read, extracted and chunked on its own, then a
        wave's chunks are embedded in one call, written after one read of the tenant's status and checked by one read
        after the writes, and the tenant's answer generation is bumped once. Every document keeps its own claim, its
        own mark, its own usage event and its own failure; what a wave shares is only what the one-document path
        read or wrote once per document with the same meaning for all of them. A wave closes at `EMBED_BATCH`
        chunks, so a batch of large documents holds no more than one embedding call's worth of text at a time."""
        outcomes: dict[int, Outcome] = {}
        by_tenant: dict[str, list[tuple[int, str]]] = {}
        for position, (tenant_id, document_id) in enumerate(documents):
            by_tenant.setdefault(tenant_id, []).append((position, document_id))
        for tenant_id, entries in by_tenant.items():
            error = _outcome(self._ingest_tenant, tenant_id, entries, outcomes, last_deliveries)
            if isinstance(error, Exception):  # a read all of the tenant's documents needed: each event comes back
                for position, _document_id in entries:
                    outcomes.setdefault(position, error)
        return [outcomes[position] for position in range(len(documents))]

    def _ingest_tenant(
        self, tenant_id: str, entries: list[tuple[int, str]], outcomes: dict[int, Outcome], last_deliveries: Collection[int]
    ) -> None:
        tenant = self.tenants.get_tenant(tenant_id)
        if tenant is not None and tenant.status.gone:
            # A redelivery after the tenant's deletion began: whatever an earlier attempt wrote goes with the index.
            self._drop_index_of_gone_tenant(tenant_id)
            outcomes.update((position, None) for position, _document_id in entries)
            return
        wave: list[_Attempt] = []
        for position, document_id in entries:
            if tenant is not None and tenant.status is TenantStatus.SUSPENDED:
                outcomes[position] = _outcome(self._wait_for_resume, tenant_id, document_id)
                continue
            prepared = _outcome(self._prepare, tenant, tenant_id, document_id, position, position in last_deliveries)
            if not isinstance(prepared, _Attempt):
                outcomes[position] = prepared
                continue
            wave.append(prepared)
            if sum(len(attempt.chunks) for attempt in wave) >= EMBED_BATCH:
                self._index_wave(tenant_id, wave, outcomes)
                wave = []
        if wave:
            self._index_wave(tenant_id, wave, outcomes)

    def _prepare(
        self, tenant: Tenant | None, tenant_id: str, document_id: str, position: int, last_delivery: bool = False
    ) -> _Attempt | Document | None:
        """Claims one document, then reads, extracts and chunks it: the attempt, or the document's end if it ends here."""
        token = uuid.uuid4().hex
        try:
            # Claimed without reading it first: the claim's condition is the check (one request, not two).
            document = self.documents.claim(tenant_id, document_id, token)
        except VersionConflict:  # absent, finished or being deleted; nothing written yet
            return self._not_claimable(tenant_id, document_id)
        if tenant is None or tenant.status is not TenantStatus.ACTIVE:
            return self._fail(document, token, 0, f"tenant is {tenant.status.value if tenant else 'gone'}")
        attempt = _Attempt(position, document, token, document.content_hash, last_delivery=last_delivery)
        chunked = _outcome(self._chunk_upload, attempt, tenant)
        return self._settle(attempt, chunked) if isinstance(chunked, Exception) else chunked

    def _chunk_upload(self, attempt: _Attempt, tenant: Tenant) -> _Attempt | Document | None:
        document = attempt.document
        limits = catalog.tier_limits(tenant.tier)
        data = self._read(document, limits.max_document_bytes)
        attempt.size, attempt.digest = len(data), content_hash(data)
        if document.content_hash is None:  # a presigned upload: dedupe now that we have the bytes
            holder = self.documents.claim_hash(document.tenant_id, attempt.digest, document.document_id)
            if holder != document.document_id:
                return self._duplicate(document, attempt.token, holder, attempt.digest)
        # Bounded in bytes of XML/text and in time per tier: a small DOCX can hold 110 MB of XML.
        text = self.extract(data, document.content_type, ExtractionBudget(max_expanded_bytes=limits.max_extracted_bytes))
        attempt.chunks = self._chunks(document, text)
        if not attempt.chunks:
            raise ExtractionError("the document yields no text to index")
        return attempt

    def _settle(self, attempt: _Attempt, exc: Exception) -> Document | None:
        """An attempt that met `exc` before its document was marked: failed for good with a reason, or (transient)
        its chunks removed and `exc` raised, so that the event comes back. On the event's last delivery a transient
        error fails the document too: SQS would move the event to the dead-letter queue once its receive count
        passes maxReceiveCount (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html)
        and leave the document `processing` for good, holding its quota; failed, it says why and to upload it again."""
        document, chunk_count = attempt.document, len(attempt.chunks)
        if isinstance(exc, (ExtractionError, PayloadTooLarge)):
            reason = str(exc.args[0] if exc.args else exc)
            return self._fail(document, attempt.token, chunk_count, reason, attempt.digest, attempt.engine_ids)
        if isinstance(exc, TRANSIENT) and attempt.last_delivery:
            logger.warning("transient error on the last delivery", exc_info=exc, extra={"tenant_id": document.tenant_id})
            reason = f"indexing failed on each of {MAX_DELIVERIES} deliveries ({exc}); upload it again"
            return self._fail(document, attempt.token, chunk_count, reason, attempt.digest, attempt.engine_ids)
        if isinstance(exc, TRANSIENT):
            self._remove_chunks(document, chunk_count, attempt.engine_ids)
            raise exc  # the event is retried (and lands in the DLQ after repeated failures)
        logger.error("ingest failed", exc_info=exc, extra={"tenant_id": document.tenant_id, "document_id": document.document_id})
        reason = f"internal error while indexing ({type(exc).__name__})"
        return self._fail(document, attempt.token, chunk_count, reason, attempt.digest, attempt.engine_ids)

    def _embed(self, wave: list[_Attempt]) -> None:
        """Embeds the wave's chunks, in calls of up to `EMBED_BATCH` texts."""
        texts = [f"{c.title}\n{c.text}" for attempt in wave for c in attempt.chunks]
        vectors: list[list[float]] = []
        for start in range(0, len(texts), EMBED_BATCH):
            vectors.extend(self.embedder.embed(texts[start : start + EMBED_BATCH]))
        for attempt in wave:
            attempt.vectors, vectors = vectors[: len(attempt.chunks)], vectors[len(attempt.chunks) :]

    def _open_index(self, tenant_id: str) -> bool:
        """Whether the tenant is still live, its index then made sure of: never (re-)create the index of a tenant
        being deleted."""
        if not self._tenant_live(tenant_id):
            return False
        self.search.ensure_index(tenant_id)
        return True

    def _write(self, tenant_id: str, attempt: _Attempt) -> _Attempt:
        earlier = [self.receipts.indexed(attempt.previous)] if attempt.previous else []
        attempt.engine_ids = self.search.replace(tenant_id, attempt.chunks, attempt.vectors, earlier)
        return attempt

    def _still_live(self, tenant_id: str) -> bool:
        """The read after the wave's writes (see the module docstring); a tenant gone by now loses its index again."""
        if self._tenant_live(tenant_id):
            return True
        self._drop_index_of_gone_tenant(tenant_id)
        return False

    def _index_wave(self, tenant_id: str, wave: list[_Attempt], outcomes: dict[int, Outcome]) -> None:
        embedded = _outcome(self._embed, wave)
        ready: list[_Attempt] = []
        for attempt in wave:
            previous = embedded if isinstance(embedded, Exception) else _outcome(self._previous_version, attempt.document)
            if isinstance(previous, Exception):
                outcomes[attempt.position] = _outcome(self._settle, attempt, previous)
                continue
            attempt.previous = previous
            ready.append(attempt)
        live = _outcome(self._open_index, tenant_id) if ready else False
        if live is not True:
            for attempt in ready:
                if isinstance(live, Exception):
                    outcomes[attempt.position] = _outcome(self._settle, attempt, live)
                else:
                    outcomes[attempt.position] = _outcome(self._release, attempt.document, attempt.digest)
            return
        written: list[_Attempt] = []
        for attempt in ready:
            result = _outcome(self._write, tenant_id, attempt)
            if isinstance(result, Exception):
                outcomes[attempt.position] = _outcome(self._settle, attempt, result)
            else:
                written.append(attempt)
        if not written:
            return
        # Nothing is marked yet: if this read fails, each attempt is settled as a failed write is (its chunks go, and
        # its event comes back to write them again, or on its last delivery the document fails).
        still_live = _outcome(self._still_live, tenant_id)
        if still_live is not True:
            for attempt in written:
                outcomes[attempt.position] = None if still_live is False else _outcome(self._settle, attempt, still_live)
            return
        for attempt in written:
            outcomes[attempt.position] = _outcome(self._mark_indexed, attempt)
        marked = [attempt for attempt in written if attempt.marked]
        if not marked:
            return
        bumped = _outcome(self.documents.bump_generation, tenant_id)  # once for the wave, after its marks
        for attempt in marked:
            if isinstance(bumped, Exception):  # cached answers may be stale: the events come back, find them indexed
                outcomes[attempt.position] = bumped
            elif not isinstance(outcomes[attempt.position], Exception):  # one that failed after its mark is not announced
                self._announce_indexed(attempt)

    def _announce_indexed(self, attempt: _Attempt) -> None:
        tenant_id, document_id = attempt.document.tenant_id, attempt.document.document_id
        logger.info("document indexed", extra={"tenant_id": tenant_id, "document_id": document_id, "chunks": len(attempt.chunks)})
        # The id is the document's, so a redelivered ingest that announces again is deduplicated downstream.
        announce(
            self.events,
            DocumentIndexed(
                event_id=f"document-indexed-{document_id}",
                tenant_id=tenant_id,
                document_id=document_id,
                title=attempt.document.title,
                chunk_count=len(attempt.chunks),
            ),
        )

    def _mark_indexed(self, attempt: _Attempt) -> Document | None:
        """Keeps the engine ids, marks the document `indexed` and counts its usage in one write (`attempt.marked`), then
        removes its previous version's other chunks and moves its source pointer. An error after the mark brings the
        event back, which finds the document indexed (and counted); the document is then not announced."""
        document, chunk_count = attempt.document, len(attempt.chunks)
        tenant_id, document_id = document.tenant_id, document.document_id
        try:
            self.receipts.keep(tenant_id, document_id, attempt.engine_ids)  # before `indexed`: a delete may come at once
        except NotFound:  # the tenant's objects refuse writes: its deletion began
            return self._lost(document, chunk_count, attempt.engine_ids, attempt.digest)
        except Exception as exc:
            logger.exception("could not keep the engine ids", extra={"tenant_id": tenant_id, "document_id": document_id})
            reason = f"internal error while indexing ({type(exc).__name__})"
            return self._fail(document, attempt.token, chunk_count, reason, attempt.digest, attempt.engine_ids)
        now = datetime.now(UTC)
        counters = {"bytes_ingested": attempt.size, "documents_indexed": 1, "chunks_indexed": chunk_count}
        try:
            indexed = self.documents.mark_indexed_and_count(
                document,
                attempt.token,
                chunk_count=chunk_count,
                content_hash=attempt.digest,
                indexed_at=now,
                # The id is the document's: counted once however often its event is delivered.
                counted=UsageEvent(event_id=f"ingest-{document_id}", tenant_id=tenant_id, occurred_at=now, counters=counters),
            )
        except VersionConflict:
            return self._lost(document, chunk_count, attempt.engine_ids, attempt.digest)
        attempt.marked = True
        if attempt.previous:
            self.remover.remove(tenant_id, attempt.previous.document_id)  # its chunks went in the same index call; now the rest
        if document.source_uri:
            self.documents.set_current_for_source(tenant_id, document.source_uri, document_id)
        return indexed

    def _not_claimable(self, tenant_id: str, document_id: str) -> Document | None:
        """The document as it is when this attempt may not take it: a redelivered event of a finished one, a delete
        under way, or an object whose record is gone, which is removed with whatever chunks a run that crashed after
        writing them left (searchable by now: this is a redelivery)."""
        document = self.documents.get(tenant_id, document_id)
        if document is None:
            logger.warning("object without a document record; removing it", extra={"tenant_id": tenant_id, "document_id": document_id})
            self.search.delete_document(tenant_id, document_id, 0)
            self.objects.delete(tenant_id, object_key(document_id))
        return document

    def _wait_for_resume(self, tenant_id: str, document_id: str) -> Document | None:
        """A suspended tenant's document stays `queued` and its event goes back to the queue: the failed batch
        item is delivered again after the queue's visibility timeout
        (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html,
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html),
        and is indexed on the first delivery after the tenant is resumed. SQS moves a message to the dead-letter
        queue once its receive count exceeds the redrive policy's maxReceiveCount
        (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html),
        where no one would index it; so the last delivery SQS makes fails the document instead, with a reason
        that says to upload it again, and it gives its quota back. Deployed, that is 4 x 30 minutes of waiting."""
        try:
            deliveries = self.documents.wait_for_resume(tenant_id, document_id, SUSPENDED_REASON)
        except VersionConflict:  # finished, being deleted or gone
            return self._not_claimable(tenant_id, document_id)
        if deliveries < MAX_DELIVERIES:
            logger.info("tenant suspended; the document waits", extra={"tenant_id": tenant_id, "document_id": document_id})
            raise WaitingForResume(f"tenant {tenant_id} is suspended; document {document_id} is delivered again later")
        attempt = uuid.uuid4().hex
        try:
            claimed = self.documents.claim(tenant_id, document_id, attempt)
        except VersionConflict:
            return self._not_claimable(tenant_id, document_id)
        return self._fail(claimed, attempt, 0, f"the tenant stayed suspended through {MAX_DELIVERIES} deliveries; upload it again")

    def _tenant_live(self, tenant_id: str) -> bool:
        status = self.tenants.tenant_status(tenant_id)  # a strongly consistent read
        return status is not None and not status.gone

    def _drop_index_of_gone_tenant(self, tenant_id: str) -> None:
        """The tenant's deletion drops its index; an attempt that may have written after that drops it again."""
        logger.info("tenant deleted during ingestion; dropping its index again", extra={"tenant_id": tenant_id})
        self.search.drop_index(tenant_id)

    def _lost(self, document: Document, chunk_count: int, engine_ids: tuple[str, ...], digest: str | None) -> Document | None:
        """This attempt no longer holds the document: it was deleted, is being deleted, or a redelivered attempt took it."""
        tenant_id, document_id = document.tenant_id, document.document_id
        if not self._tenant_live(tenant_id):
            self._drop_index_of_gone_tenant(tenant_id)
            return None
        current = self.documents.get(tenant_id, document_id)
        if current is None or current.status is DocumentStatus.DELETING:
            # Its delete may have swept the index before our chunks were there: they are ours to remove.
            logger.info("document deleted during ingestion", extra={"tenant_id": tenant_id, "document_id": document_id})
            self._remove_chunks(document, chunk_count, engine_ids)
            self._release(document, digest)
            self.documents.bump_generation(tenant_id)  # an answer cached while our chunks were searchable is stale
            return None
        # Another attempt holds it: its replace removes every other chunk of the document.
        logger.warning("another attempt took the document over", extra={"tenant_id": tenant_id, "document_id": document_id})
        return current

    def _release(self, document: Document, digest: str | None) -> None:
        if digest and document.content_hash is None:  # a presigned upload's claim, made by this attempt
            self.documents.release_hash(document.tenant_id, digest, document.document_id)

    def _read(self, document: Document, tier_max: int) -> bytes:
        """The upload, if it is no larger than declared (and the tier allows): one GetObject, its length checked
        before its body is read (a HEAD first cost one more S3 request and one more tenant-status read), and no
        data-gate read of the tenant's status: `ingest` has just read it."""
        try:
            data = self.objects.read_upload(document.tenant_id, object_key(document.document_id), min(document.size_bytes, tier_max))
        except PayloadTooLarge as exc:
            raise ExtractionError(f"the uploaded object holds more than the {document.size_bytes} declared bytes ({exc.message})") from None
        if data is None:
            raise ExtractionError("the upload was not received")
        return data

    def _chunks(self, document: Document, text: str) -> list[Chunk]:
        config = self.configs.get(document.tenant_id).config
        return [
            Chunk(
                chunk_id=chunk_id(document.document_id, position),
                document_id=document.document_id,
                title=document.title,
                text=piece.text,
                position=position,
                metadata={**document.metadata, **({"section": piece.section} if piece.section else {})},
            )
            for position, piece in enumerate(chunk_text(text, config.chunking))
        ]

    def _previous_version(self, document: Document) -> Document | None:
        if not document.source_uri:
            return None
        previous_id = self.documents.current_for_source(document.tenant_id, document.source_uri)
        if previous_id is None or previous_id == document.document_id:
            return None
        return self.documents.get(document.tenant_id, previous_id)

    def _duplicate(self, document: Document, attempt: str, holder: str, digest: str) -> Document | None:
        self.objects.delete(document.tenant_id, object_key(document.document_id))
        try:
            return self.documents.mark_indexed(
                document.tenant_id,
                document.document_id,
                attempt,
                chunk_count=0,
                content_hash=digest,
                indexed_at=datetime.now(UTC),
                duplicate_of=holder,
            )
        except VersionConflict:
            return self._lost(document, 0, (), None)

    def _remove_chunks(self, document: Document, count: int, engine_ids: tuple[str, ...] = ()) -> None:
        """This run's chunks (`engine_ids`), an earlier run's (its receipt) and whatever the index finds by document id."""
        try:
            earlier = self.receipts.of(document.tenant_id, document.document_id)
        except NotFound:  # the tenant is gone, and its whole index with it
            earlier = ()
        try:
            self.search.delete_document(document.tenant_id, document.document_id, count, engine_ids + earlier)
            if engine_ids or earlier:
                self.receipts.drop(document.tenant_id, document.document_id)
        except Exception:
            logger.exception(
                "could not remove partial chunks", extra={"tenant_id": document.tenant_id, "document_id": document.document_id}
            )
            raise

    def _fail(
        self,
        document: Document,
        attempt: str,
        chunk_count: int,
        reason: str,
        digest: str | None = None,
        engine_ids: tuple[str, ...] = (),
    ) -> Document | None:
        """Marks the document failed with a reason, leaving no chunks and freeing its content hash for a retry."""
        self._remove_chunks(document, chunk_count, engine_ids)
        if digest or document.content_hash:
            self.documents.release_hash(document.tenant_id, digest or document.content_hash or "", document.document_id)
        logger.info("document failed", extra={"tenant_id": document.tenant_id, "document_id": document.document_id, "reason": reason})
        try:
            failed = self.documents.mark_failed(document.tenant_id, document.document_id, attempt, reason[:1000])
        except VersionConflict:
            return self._lost(document, chunk_count, engine_ids, None)
        announce(
            self.events,
            DocumentFailed(
                event_id=f"document-failed-{document.document_id}",
                tenant_id=document.tenant_id,
                document_id=document.document_id,
                title=document.title,
                reason=reason[:1000],
            ),
        )
        return failed
