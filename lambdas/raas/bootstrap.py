"""The composition root: the one place that turns settings into the platform's services.

    services = bootstrap(Settings.from_env())                      # a Lambda cold start
    services = bootstrap(settings, event_publisher=LocalEventBus())  # `raas local`
    services = bootstrap(settings, embedder=FakeEmbedder())          # a test

Each service is built on first use, once per container, so a function builds only what it
uses: the query function never imports the billing SDK, the authorizer never loads a search
client. Adapters and heavy SDKs are imported inside the builders for the same reason.

Two kinds of AWS client exist, named so they cannot be confused:
- `platform_client(service)`: the function's own role, for platform-wide data (the tenant
  registry, provisioning, the outbox);
- `tenant_scoped_client(service)`: for a tenant's own data; in AWS it assumes the tenant data
  role with a `tenant_id` session tag per call (security/credentials.py), locally it is the
  platform client.

Handlers reach the container through `services()`: the one `install`ed (the local platform,
tests), else one built from the environment at the container's first use. Nothing here imports
`raas.local`: the local platform passes its stand-ins in.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from raas.domain.errors import NotFound, ServiceUnavailable
from raas.settings import ConfigurationError, Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from raas.adapters.audit import DynamoAuditLog
    from raas.adapters.billing_store import DynamoInvoiceStore
    from raas.adapters.conversations import DynamoConversationStore
    from raas.adapters.documents import DynamoDocumentStore
    from raas.adapters.feedback import DynamoFeedbackStore
    from raas.adapters.objects import KmsKeyring, S3ObjectStore
    from raas.adapters.purge import AwsTenantPurger
    from raas.adapters.queries import DynamoAnswerJournal, DynamoQueryLog, DynamoResponseCache
    from raas.adapters.registry import DynamoKeyStore, DynamoTenantStore
    from raas.adapters.usage import BufferedUsageRecorder, DynamoUsageRecorder, QuotaLedger
    from raas.adapters.usage_plans import UsagePlanKeys
    from raas.domain.catalog import ModelInfo
    from raas.domain.ports import BillingProvider, ChatModel, Embedder, EventPublisher, Reranker, SearchIndex, TokenVerifier
    from raas.security.credentials import ClientSource, TenantSessions
    from raas.services.auth import Authenticator
    from raas.services.billing import BillingService
    from raas.services.config import ConfigService
    from raas.services.console import ConfigPreview, DocumentChunks, IdentityService, TenantTimeline
    from raas.services.conversations import ConversationArchive, ConversationService
    from raas.services.documents import DocumentService
    from raas.services.export import ExportService
    from raas.services.feedback import FeedbackService
    from raas.services.ingest import IngestService
    from raas.services.lifecycle import LifecycleService
    from raas.services.metering import MeteringService
    from raas.services.query import QueryService
    from raas.services.quota import QuotaGuard
    from raas.services.request_usage import RequestUsage
    from raas.services.tenants import KeyService, TenantService
    from raas.services.webhooks import WebhookDispatcher, WebhookService

T = TypeVar("T")

# Vector sizes known without loading a model (the search index is created with them).
_OPENAI_DIMENSIONS = {"text-embedding-3-large": 3072}
_MINILM_DIMENSION = 384


class provided(Generic[T]):
    """A service built on first use and kept for the container's life.

    Building happens under the container's lock (the local platform serves threads), and the
    result lands in the instance's __dict__, so later reads skip the descriptor entirely; an
    override passed to `bootstrap` sits there from the start and is never built.
    """

    def __init__(self, build: Callable[[Services], T]):
        self.build = build
        self.name = build.__name__
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> provided[T]: ...
    @overload
    def __get__(self, instance: Services, owner: type) -> T: ...
    def __get__(self, instance: Services | None, owner: type) -> provided[T] | T:
        if instance is None:
            return self
        with instance._lock:
            if self.name not in instance.__dict__:
                instance.__dict__[self.name] = self.build(instance)
            value: T = instance.__dict__[self.name]
            return value


class Services:
    """The services of one container. Build it with `bootstrap`."""

    # Services that take an argument; tests may replace them with a callable of the same shape.
    _PARAMETRISED = frozenset({"platform_client", "tenant_scoped_client", "chat_model", "idempotency_store", "provider_key"})

    def __init__(self, settings: Settings, overrides: dict[str, Any]):
        self.settings = settings
        self.overrides = dict(overrides)
        self._lock = threading.RLock()
        self._platform_clients: dict[str, Any] = {}
        self._tenant_scoped_clients: dict[str, ClientSource] = {}
        self._chat_models: dict[str, ChatModel] = {}
        self._idempotency_stores: dict[str, DynamoDBPersistenceLayer] = {}
        self.__dict__.update(overrides)

    def replaced(self, settings: Settings | None = None, **overrides: Any) -> Services:
        """A new container with this one's overrides plus `overrides`, and its settings unless
        `settings` are given (tests and benchmarks that change the environment or a part)."""
        return bootstrap(settings or self.settings, **{**self.overrides, **overrides})

    @classmethod
    def overridable(cls) -> frozenset[str]:
        return frozenset(name for name, value in vars(cls).items() if isinstance(value, provided)) | cls._PARAMETRISED

    # --- AWS clients -------------------------------------------------------------------------

    def platform_client(self, service: str) -> Any:
        """A client with the function's own role; one per service per container."""
        with self._lock:
            if service not in self._platform_clients:
                from raas.adapters.aws import new_client

                self._platform_clients[service] = new_client(service)
            return self._platform_clients[service]

    @provided
    def tenant_sessions(self) -> TenantSessions | None:
        """Per-tenant sessions of the tenant data role, when the deployment has one (AWS)."""
        if not self.settings.tenant_role_arn:
            return None
        from raas.security.credentials import TenantSessions

        return TenantSessions(self.platform_client("sts"), self.settings.tenant_role_arn)

    def tenant_scoped_client(self, service: str) -> ClientSource:
        """Tenant data goes through this: scoped to the tenant in AWS, the platform client locally."""
        with self._lock:
            if service not in self._tenant_scoped_clients:
                from raas.security.credentials import ClientSource

                self._tenant_scoped_clients[service] = ClientSource(service, self.platform_client(service), self.tenant_sessions)
            return self._tenant_scoped_clients[service]

    def provider_key(self, name: str) -> str | None:
        """A provider credential: from the settings (local, tests), else from the deployment's
        Secrets Manager secret, cached by Powertools for five minutes so a rotation is picked up."""
        settings = self.settings
        from_settings = {
            "openai": settings.openai_api_key or os.environ.get("OPENAI_API_KEY"),
            "anthropic": settings.anthropic_api_key or os.environ.get("ANTHROPIC_API_KEY"),
            "stripe": settings.stripe_api_key,
            "stripe_webhook": settings.stripe_webhook_secret,
        }.get(name)
        if from_settings or not settings.provider_keys_secret_arn:
            return from_settings
        from aws_lambda_powertools.utilities import parameters

        keys = parameters.get_secret(settings.provider_keys_secret_arn, transform="json", max_age=300)
        value = keys.get(name) if isinstance(keys, dict) else None
        return str(value) if value else None

    # --- registry ----------------------------------------------------------------------------

    @provided
    def tenant_store(self) -> DynamoTenantStore:
        from raas.adapters.registry import DynamoTenantStore

        return DynamoTenantStore(self.platform_client("dynamodb"), self.settings.tenants_table)

    @provided
    def key_store(self) -> DynamoKeyStore:
        from raas.adapters.registry import DynamoKeyStore

        settings = self.settings
        return DynamoKeyStore(self.tenant_scoped_client("dynamodb"), settings.tenants_table, settings.key_touch_interval_seconds)

    @provided
    def config_service(self) -> ConfigService:
        from raas.adapters.registry import DynamoConfigStore
        from raas.services.config import ConfigCache, ConfigService

        store = DynamoConfigStore(self.tenant_scoped_client("dynamodb"), self.settings.tenants_table)
        return ConfigService(store, ConfigCache(self.settings.config_cache_ttl_seconds), audit=self.audit_log, events=self.announcer)

    @provided
    def usage_plan_keys(self) -> UsagePlanKeys | None:
        parameter = self.settings.usage_plans_parameter
        if not parameter:
            return None
        from raas.adapters.usage_plans import UsagePlanKeys

        return UsagePlanKeys(self.platform_client("apigateway"), self.platform_client("ssm"), parameter)

    @provided
    def operator_usage_key(self) -> str | None:
        """The operator plan's key value, looked up once per container (AWS only)."""
        key_id = self.settings.operator_usage_key_id
        if not key_id:
            return None
        from raas.adapters.usage_plans import UsagePlanKeys

        return UsagePlanKeys(self.platform_client("apigateway"), self.platform_client("ssm"), "").value(key_id)

    @provided
    def tenant_service(self) -> TenantService:
        from raas.services.tenants import TenantService

        return TenantService(self.tenant_store, self.event_publisher, self.audit_log)

    @provided
    def key_service(self) -> KeyService:
        from raas.services.tenants import KeyService

        return KeyService(self.key_store, self.audit_log, events=self.announcer)

    @provided
    def jwt_verifier(self) -> TokenVerifier | None:
        settings = self.settings
        if not (settings.jwt_jwks_url and settings.jwt_issuer and settings.jwt_audience):
            return None
        from raas.adapters.jwt_verifier import JwksVerifier  # cryptography is only loaded when JWT is on

        return JwksVerifier(settings.jwt_jwks_url, settings.jwt_issuer, settings.jwt_audience)

    @provided
    def authenticator(self) -> Authenticator:
        from raas.services.auth import Authenticator

        return Authenticator(self.key_store, self.tenant_store, self.jwt_verifier)

    # --- lifecycle, audit, metering, billing -------------------------------------------------

    @provided
    def event_publisher(self) -> EventPublisher:
        """The platform bus. In AWS, EventBridge; `raas local` and tests pass their own in."""
        if not self.settings.event_bus_name:
            raise ConfigurationError("RAAS_EVENT_BUS_NAME is not set: the platform has no event bus to publish lifecycle events on")
        from raas.adapters.events import EventBridgePublisher

        return EventBridgePublisher(self.platform_client("events"), self.settings.event_bus_name)

    @provided
    def announcer(self) -> EventPublisher:
        """The platform bus for best-effort announcements (webhook events), built on first publish."""
        from raas.services.notify import Deferred

        return Deferred(lambda: self.event_publisher)

    @provided
    def audit_log(self) -> DynamoAuditLog:
        from raas.adapters.audit import DynamoAuditLog

        return DynamoAuditLog(self.tenant_scoped_client("dynamodb"), self.settings.audit_table, self.settings.tenants_table)

    def tenant_data_gate(self, tenant_id: str) -> None:
        """Refuses S3 and KMS access for a tenant that is being deleted or gone (see objects.TenantGate)."""
        status = self.tenant_store.tenant_status(tenant_id)
        if status is None or status.gone:
            raise NotFound(f"tenant {tenant_id} not found", code="tenant_not_found")

    @provided
    def purger(self) -> AwsTenantPurger:
        from raas.adapters.dynamo_schema import TENANT_TABLES
        from raas.adapters.purge import AwsTenantPurger

        names = self.settings.table_names()
        tables = [names[table.logical_name] for table in TENANT_TABLES]
        return AwsTenantPurger(self.platform_client("s3"), self.settings.documents_bucket, self.platform_client("dynamodb"), tables)

    @provided
    def billing_provider(self) -> BillingProvider | None:
        api_key = self.provider_key("stripe") if self.settings.billing_enabled else None
        if not api_key:
            return None
        from raas.adapters.stripe_billing import StripeBilling

        return StripeBilling(api_key, self.settings.stripe_api_base)

    @provided
    def lifecycle_service(self) -> LifecycleService:
        from raas.adapters.objects import KmsKeyring
        from raas.services.lifecycle import LifecycleService

        return LifecycleService(
            self.tenant_store,
            self.config_service,
            KmsKeyring(self.platform_client("kms")),  # provisioning and shredding use the platform role, not a tenant session
            self.search_index,
            self.purger,
            self.event_publisher,
            usage_plans=self.usage_plan_keys,
            billing=self.billing_provider,
            exporter=self.export_service,
            final_billing=self.billing_service,
            tenants_table=self.settings.tenants_table,
        )

    # --- tenant webhooks ---------------------------------------------------------------------

    @provided
    def webhook_dispatcher(self) -> WebhookDispatcher:
        """Delivery: endpoints and logs in DynamoDB, secrets sealed with the tenant's key, SSRF-checked sends."""
        from raas.adapters.objects import KmsKeyring
        from raas.adapters.webhook_http import WebhookSender
        from raas.adapters.webhooks import DynamoWebhookStore, KmsSecretBox
        from raas.services.webhooks import WebhookDispatcher

        settings = self.settings
        store = DynamoWebhookStore(self.tenant_scoped_client("dynamodb"), settings.tenants_table, settings.queries_table)
        secrets = KmsSecretBox(self.platform_client("kms"), KmsKeyring(self.platform_client("kms"), gate=self.tenant_data_gate))
        tenants = self.tenant_store

        def tier_of(tenant_id: str) -> Any:
            tenant = tenants.get_tenant(tenant_id)
            return None if tenant is None or tenant.status.gone else tenant.tier

        sender = WebhookSender(allow_loopback=settings.webhook_allow_loopback, loopback_only=settings.webhook_loopback_only)
        return WebhookDispatcher(store, secrets, sender, self.audit_log, tier_of)

    @provided
    def webhook_service(self) -> WebhookService:
        from raas.services.webhooks import WebhookService

        dispatcher = self.webhook_dispatcher
        return WebhookService(
            dispatcher.store, dispatcher.secrets, dispatcher, self.audit_log, allow_loopback=self.settings.webhook_allow_loopback
        )

    @provided
    def quota_ledger(self) -> QuotaLedger:
        from raas.adapters.usage import QuotaLedger

        return QuotaLedger(self.tenant_scoped_client("dynamodb"), self.settings.usage_table)

    @provided
    def quota_guard(self) -> QuotaGuard:
        from raas.services.quota import QuotaGuard

        return QuotaGuard(self.quota_ledger, self.event_publisher)

    @provided
    def invoice_store(self) -> DynamoInvoiceStore:
        from raas.adapters.billing_store import DynamoInvoiceStore

        return DynamoInvoiceStore(self.tenant_scoped_client("dynamodb"), self.settings.usage_table)

    @provided
    def metering_service(self) -> MeteringService:
        from raas.services.metering import MeteringService

        exports = self.export_service

        def release_expired_exports(tenant_id: str, now: datetime) -> object:
            # S3's lifecycle rule removes the bundles; the daily run gives back the storage they counted.
            return exports.release_expired(tenant_id, now, remove_objects=False)

        return MeteringService(
            self.tenant_store,
            self.usage_recorder,
            self.document_store,
            self.invoice_store,
            release_expired_exports=release_expired_exports,
            events=self.announcer,
        )

    @provided
    def billing_service(self) -> BillingService | None:
        provider = self.billing_provider
        if provider is None:
            return None
        from raas.adapters.billing_store import DynamoOutbox
        from raas.services.billing import BillingService

        outbox = DynamoOutbox(self.platform_client("dynamodb"), self.settings.outbox_table)
        return BillingService(
            self.tenant_store,
            self.tenant_service,
            outbox,
            provider,
            self.invoice_store,
            self.settings.payment_grace_days,
            events=self.announcer,
        )

    @provided
    def export_service(self) -> ExportService:
        from raas.services.export import ExportService

        return ExportService(
            self.document_store,
            self.object_store,
            self.config_service,
            self.usage_recorder,
            self.audit_log,
            events=self.announcer,
            conversations=self.conversation_archive,
        )

    def idempotency_store(self, function: str) -> DynamoDBPersistenceLayer:
        """One per function: a persistence layer remembers the function it serves (locally, several share a process)."""
        with self._lock:
            if function not in self._idempotency_stores:
                from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

                self._idempotency_stores[function] = DynamoDBPersistenceLayer(
                    table_name=self.settings.idempotency_table, boto3_client=self.platform_client("dynamodb")
                )
            return self._idempotency_stores[function]

    @provided
    def usage_counters(self) -> DynamoUsageRecorder:
        """The usage table's counters, written alone (`usage_recorder`) or with a document's mark (`document_store`)."""
        from raas.adapters.usage import DynamoUsageRecorder

        settings = self.settings
        # Usage is queued for the payment provider only when the deployment bills through one.
        outbox = settings.outbox_table if settings.billing_enabled else None
        return DynamoUsageRecorder(self.tenant_scoped_client("dynamodb"), settings.usage_table, outbox)

    @provided
    def usage_recorder(self) -> DynamoUsageRecorder | BufferedUsageRecorder:
        from raas.adapters.usage import BufferedUsageRecorder

        settings = self.settings
        if settings.usage_buffer_queue_url:
            return BufferedUsageRecorder(self.usage_counters, self.platform_client("sqs"), settings.usage_buffer_queue_url)
        return self.usage_counters

    @provided
    def request_usage(self) -> RequestUsage:
        """The usage recorder of API requests: a query's usage and its API call are one write."""
        from raas.services.request_usage import RequestUsage

        return RequestUsage(self.usage_recorder)

    # --- documents and search ----------------------------------------------------------------

    @provided
    def keyring(self) -> KmsKeyring:
        from raas.adapters.objects import KmsKeyring

        return KmsKeyring(self.tenant_scoped_client("kms"), gate=self.tenant_data_gate)

    @provided
    def document_store(self) -> DynamoDocumentStore:
        from raas.adapters.documents import DynamoDocumentStore

        return DynamoDocumentStore(self.tenant_scoped_client("dynamodb"), self.settings.documents_table, self.usage_counters)

    @provided
    def object_store(self) -> S3ObjectStore:
        from raas.adapters.objects import S3ObjectStore

        return S3ObjectStore(self.tenant_scoped_client("s3"), self.settings.documents_bucket, self.keyring)

    @provided
    def embedder(self) -> Embedder:
        settings = self.settings
        if settings.embedder == "openai":
            from raas.adapters.embedders import OpenAIEmbedder

            api_key = self.provider_key("openai")
            if not api_key:
                raise ServiceUnavailable("RAAS_EMBEDDER=openai needs an OpenAI API key", code="embedder_not_configured")
            return OpenAIEmbedder(
                api_key, settings.openai_embedding_model, timeout=settings.llm_timeout_seconds, max_retries=settings.llm_max_retries
            )
        from raas.adapters.embedders import LocalMiniLMEmbedder

        return LocalMiniLMEmbedder(threads=self.settings.embedder_threads)

    @property
    def embedder_dimension(self) -> int:
        """The vector size of the configured embedder, known without loading a model."""
        if self.settings.embedder == "openai":
            return _OPENAI_DIMENSIONS.get(self.settings.openai_embedding_model, 1536)
        return _MINILM_DIMENSION

    @provided
    def search_index(self) -> SearchIndex:
        settings = self.settings
        if settings.search_engine == "opensearch":
            from raas.adapters.search_opensearch import OpenSearchIndex, sigv4_client

            if not settings.opensearch_endpoint:
                raise ConfigurationError("RAAS_SEARCH_ENGINE=opensearch needs RAAS_OPENSEARCH_ENDPOINT")
            region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
            client = sigv4_client(settings.opensearch_endpoint, region, settings.opensearch_service)
            return OpenSearchIndex(client, self.embedder_dimension, settings.opensearch_service)
        from raas.adapters.search_embedded import EmbeddedSearch

        directory = Path(settings.search_dir) if settings.search_dir else Path(tempfile.gettempdir()) / "raas-search"
        return EmbeddedSearch(directory, self.embedder_dimension)

    @provided
    def reranker(self) -> Reranker | None:
        settings = self.settings
        if settings.reranker == "bedrock":
            from raas.adapters.rerankers import BedrockReranker

            if not settings.bedrock_rerank_model_arn:
                raise ConfigurationError("RAAS_RERANKER=bedrock needs RAAS_BEDROCK_RERANK_MODEL_ARN")
            return BedrockReranker(self.platform_client("bedrock-agent-runtime"), settings.bedrock_rerank_model_arn)
        if settings.reranker == "local":
            from raas.adapters.rerankers import SentenceMaxSimReranker

            return SentenceMaxSimReranker(self.embedder)
        return None

    def chat_model(self, model: ModelInfo) -> ChatModel:
        """The provider client for a model, made once per container; offline answers when no key is set."""
        with self._lock:
            if model.provider not in self._chat_models:
                self._chat_models[model.provider] = self._new_chat_model(model.provider)
            return self._chat_models[model.provider]

    def _new_chat_model(self, provider: str) -> ChatModel:
        settings = self.settings
        api_key = self.provider_key(provider)
        if api_key:
            from raas.adapters.llm import provider_client

            base_url = {"openai": settings.openai_base_url, "anthropic": settings.anthropic_base_url}.get(provider)
            return provider_client(
                provider, api_key, timeout=settings.llm_timeout_seconds, max_retries=settings.llm_max_retries, base_url=base_url
            )
        if settings.offline_answers:
            from raas.adapters.llm import OfflineExtractive

            return OfflineExtractive()
        raise ServiceUnavailable(f"no API key is configured for {provider}", code="llm_not_configured")

    @provided
    def document_service(self) -> DocumentService:
        from raas.services.documents import DocumentService

        return DocumentService(
            self.document_store, self.object_store, self.search_index, self.settings.presign_expires_seconds, audit=self.audit_log
        )

    # --- the console's views (raas.services.console): read-only, built from the services above ----------

    @provided
    def identity_service(self) -> IdentityService:
        from raas.services.console import IdentityService

        return IdentityService(self.tenant_store, self.key_store, self.config_service)

    @provided
    def config_preview(self) -> ConfigPreview:
        from raas.services.console import ConfigPreview

        return ConfigPreview(self.config_service, self.tenant_service)

    @provided
    def tenant_timeline(self) -> TenantTimeline:
        from raas.services.console import TenantTimeline

        return TenantTimeline(self.tenant_service, self.audit_log)

    @provided
    def document_chunks(self) -> DocumentChunks:
        from raas.services.console import DocumentChunks

        return DocumentChunks(self.document_store, self.search_index)

    @provided
    def ingest_service(self) -> IngestService:
        from raas.adapters.extraction_sandbox import SandboxedExtractor
        from raas.services.ingest import IngestService

        return IngestService(
            self.document_store,
            self.object_store,
            self.search_index,
            self.embedder,
            self.config_service,
            self.tenant_store,
            extract=SandboxedExtractor(),
            events=self.announcer,
        )

    @provided
    def query_log(self) -> DynamoQueryLog:
        from raas.adapters.queries import DynamoQueryLog

        return DynamoQueryLog(self.tenant_scoped_client("dynamodb"), self.settings.queries_table)

    @provided
    def response_cache(self) -> DynamoResponseCache:
        from raas.adapters.queries import DynamoResponseCache

        settings = self.settings
        return DynamoResponseCache(self.tenant_scoped_client("dynamodb"), settings.queries_table, settings.response_cache_ttl_seconds)

    @provided
    def query_service(self) -> QueryService:
        from raas.services.query import QueryService

        return QueryService(
            self.config_service,
            self.search_index,
            self.embedder,
            self.reranker,
            self.chat_model,
            self.document_store.generation,
            self.response_cache,
            self.answer_journal,
            self.request_usage,
            self.quota_guard,
        )

    @provided
    def answer_journal(self) -> DynamoAnswerJournal:
        from raas.adapters.queries import DynamoAnswerJournal

        return DynamoAnswerJournal(self.query_log, self.response_cache, self.feedback_store)

    # --- feedback and conversations (in the queries table, retention by the tier's TTL) -------

    @provided
    def feedback_store(self) -> DynamoFeedbackStore:
        from raas.adapters.feedback import DynamoFeedbackStore

        return DynamoFeedbackStore(self.tenant_scoped_client("dynamodb"), self.settings.queries_table)

    @provided
    def feedback_service(self) -> FeedbackService:
        from raas.services.feedback import FeedbackService

        return FeedbackService(self.feedback_store, self.audit_log)

    @provided
    def conversation_store(self) -> DynamoConversationStore:
        from raas.adapters.conversations import DynamoConversationStore

        return DynamoConversationStore(self.tenant_scoped_client("dynamodb"), self.settings.queries_table)

    @provided
    def conversation_service(self) -> ConversationService:
        from raas.services.conversations import ConversationService

        return ConversationService(self.conversation_store, self.query_service, self.audit_log)

    @provided
    def conversation_archive(self) -> ConversationArchive:
        """The conversations a tenant export holds (the store only: no query service is built)."""
        from raas.services.conversations import ConversationArchive

        return ConversationArchive(self.conversation_store)


def bootstrap(settings: Settings | None = None, **overrides: Any) -> Services:
    """A container of services from `settings` (default: the environment), with `overrides`
    (any service by name, e.g. `embedder=`, `event_publisher=`) used instead of building them."""
    unknown = set(overrides) - Services.overridable()
    if unknown:
        raise TypeError(f"bootstrap() has no service named {', '.join(sorted(unknown))}")
    return Services(settings if settings is not None else Settings.from_env(), overrides)


_installed: Services | None = None
_install_lock = threading.Lock()


def services() -> Services:
    """The process's container: the installed one, else one built from the environment once."""
    global _installed
    current = _installed
    if current is not None:
        return current
    with _install_lock:
        if _installed is None:
            _installed = bootstrap()
        return _installed


def install(container: Services) -> Services:
    """Makes `container` the one handlers use (the local platform and tests build their own)."""
    global _installed
    with _install_lock:
        _installed = container
    return container


def uninstall() -> None:
    global _installed
    with _install_lock:
        _installed = None
