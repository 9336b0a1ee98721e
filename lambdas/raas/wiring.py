"""Builds the services once per container from settings and adapters.

Handlers ask for services here; tests and the local platform call `reset()` after
changing the environment so the next call builds them anew. Heavy SDKs (openai,
anthropic, opensearch-py, sentence-transformers) load only inside the builders that need them.
"""

from __future__ import annotations

import os
import tempfile
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from raas.adapters.audit import DynamoAuditLog
from raas.adapters.aws import client, reset_clients
from raas.adapters.billing_store import DynamoInvoiceStore, DynamoOutbox
from raas.adapters.documents import DynamoDocumentStore
from raas.adapters.dynamo_schema import TENANT_TABLES
from raas.adapters.objects import KmsKeyring, S3ObjectStore
from raas.adapters.purge import AwsTenantPurger
from raas.adapters.queries import DynamoQueryLog, DynamoResponseCache
from raas.adapters.registry import DynamoConfigStore, DynamoKeyStore, DynamoTenantStore
from raas.adapters.usage import BufferedUsageRecorder, DynamoUsageRecorder, QuotaLedger
from raas.adapters.usage_plans import UsagePlanKeys
from raas.domain.catalog import ModelInfo
from raas.domain.errors import NotFound, ServiceUnavailable
from raas.domain.ports import BillingProvider, ChatModel, Embedder, EventPublisher, Reranker, SearchIndex, TokenVerifier
from raas.security.credentials import ClientSource, TenantSessions
from raas.services.auth import Authenticator
from raas.services.billing import BillingService
from raas.services.config import ConfigCache, ConfigService
from raas.services.documents import DocumentService
from raas.services.export import ExportService
from raas.services.ingest import IngestService
from raas.services.lifecycle import LifecycleService
from raas.services.metering import MeteringService
from raas.services.query import QueryService
from raas.services.quota import QuotaGuard
from raas.services.tenants import KeyService, TenantService
from raas.settings import get_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from raas.local.bus import LocalEventBus

# --- clients ----------------------------------------------------------------------------------


@cache
def tenant_sessions() -> TenantSessions | None:
    """Per-tenant sessions of the tenant data role, when the deployment has one (AWS)."""
    role_arn = get_settings().tenant_role_arn
    return TenantSessions(client("sts"), role_arn) if role_arn else None


@cache
def clients(service: str) -> ClientSource:
    """Tenant data goes through this: scoped to the tenant in AWS, the platform client locally."""
    return ClientSource(service, client(service), tenant_sessions())


# --- registry -------------------------------------------------------------------------------


@cache
def tenant_store() -> DynamoTenantStore:
    return DynamoTenantStore(client("dynamodb"), get_settings().tenants_table)


@cache
def key_store() -> DynamoKeyStore:
    settings = get_settings()
    return DynamoKeyStore(clients("dynamodb"), settings.tenants_table, settings.key_touch_interval_seconds)


@cache
def config_service() -> ConfigService:
    settings = get_settings()
    return ConfigService(
        DynamoConfigStore(clients("dynamodb"), settings.tenants_table), ConfigCache(settings.config_cache_ttl_seconds), audit=audit_log()
    )


@cache
def usage_plan_keys() -> UsagePlanKeys | None:
    parameter = get_settings().usage_plans_parameter
    return UsagePlanKeys(client("apigateway"), client("ssm"), parameter) if parameter else None


@cache
def operator_usage_key() -> str | None:
    """The operator plan's key value, looked up once per container (AWS only)."""
    key_id = get_settings().operator_usage_key_id
    if not key_id:
        return None
    return UsagePlanKeys(client("apigateway"), client("ssm"), "").value(key_id)


@cache
def tenant_service() -> TenantService:
    return TenantService(tenant_store(), event_publisher(), audit_log())


@cache
def key_service() -> KeyService:
    return KeyService(key_store(), audit_log())


# --- lifecycle, audit, metering, billing ----------------------------------------------------


@cache
def event_publisher() -> EventPublisher:
    """EventBridge in AWS; locally, the dispatcher that routes through the same routing table."""
    bus = get_settings().event_bus_name
    if bus:
        from raas.adapters.events import EventBridgePublisher

        return EventBridgePublisher(client("events"), bus)
    return local_bus()


@cache
def local_bus() -> LocalEventBus:
    from raas.local.bus import LocalEventBus

    return LocalEventBus()


@cache
def audit_log() -> DynamoAuditLog:
    settings = get_settings()
    return DynamoAuditLog(clients("dynamodb"), settings.audit_table, settings.tenants_table)


def tenant_data_gate(tenant_id: str) -> None:
    """Refuses S3 and KMS access for a tenant that is being deleted or gone (see objects.TenantGate)."""
    tenant = tenant_store().get_tenant(tenant_id)
    if tenant is None or tenant.status.gone:
        raise NotFound(f"tenant {tenant_id} not found", code="tenant_not_found")


@cache
def purger() -> AwsTenantPurger:
    settings = get_settings()
    names = settings.table_names()
    return AwsTenantPurger(client("s3"), settings.documents_bucket, client("dynamodb"), [names[t.logical_name] for t in TENANT_TABLES])


def provider_key(name: str) -> str | None:
    """A provider credential: from the environment (local, tests), else from the deployment's
    Secrets Manager secret, cached by Powertools for five minutes so a rotation is picked up."""
    settings = get_settings()
    from_env = {
        "openai": settings.openai_api_key or os.environ.get("OPENAI_API_KEY"),
        "anthropic": settings.anthropic_api_key or os.environ.get("ANTHROPIC_API_KEY"),
        "stripe": settings.stripe_api_key,
        "stripe_webhook": settings.stripe_webhook_secret,
    }.get(name)
    if from_env or not settings.provider_keys_secret_arn:
        return from_env
    from aws_lambda_powertools.utilities import parameters

    keys = parameters.get_secret(settings.provider_keys_secret_arn, transform="json", max_age=300)
    value = keys.get(name) if isinstance(keys, dict) else None
    return str(value) if value else None


@cache
def billing_provider() -> BillingProvider | None:
    settings = get_settings()
    api_key = provider_key("stripe") if settings.billing_enabled else None
    if not api_key:
        return None
    from raas.adapters.stripe_billing import StripeBilling

    return StripeBilling(api_key, settings.stripe_api_base)


@cache
def lifecycle_service() -> LifecycleService:
    return LifecycleService(
        tenant_store(),
        config_service(),
        KmsKeyring(client("kms")),  # provisioning and shredding use the platform role, not a tenant session
        search_index(),
        purger(),
        event_publisher(),
        usage_plans=usage_plan_keys(),
        billing=billing_provider(),
        exporter=export_service(),
        final_billing=billing_service(),
        tenants_table=get_settings().tenants_table,
    )


@cache
def quota_ledger() -> QuotaLedger:
    return QuotaLedger(clients("dynamodb"), get_settings().usage_table)


@cache
def quota_guard() -> QuotaGuard:
    return QuotaGuard(quota_ledger(), event_publisher())


@cache
def invoice_store() -> DynamoInvoiceStore:
    return DynamoInvoiceStore(clients("dynamodb"), get_settings().usage_table)


@cache
def metering_service() -> MeteringService:
    return MeteringService(tenant_store(), usage_recorder(), document_store(), invoice_store())


@cache
def billing_service() -> BillingService | None:
    provider = billing_provider()
    if provider is None:
        return None
    settings = get_settings()
    outbox = DynamoOutbox(client("dynamodb"), settings.outbox_table)
    return BillingService(tenant_store(), tenant_service(), outbox, provider, invoice_store(), settings.payment_grace_days)


@cache
def export_service() -> ExportService:
    return ExportService(document_store(), object_store(), config_service(), usage_recorder(), audit_log())


@cache
def idempotency_store(function: str) -> DynamoDBPersistenceLayer:
    """One per function: a persistence layer remembers the function it serves (locally, several share a process)."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table, boto3_client=client("dynamodb"))


@cache
def jwt_verifier() -> TokenVerifier | None:
    settings = get_settings()
    if not (settings.jwt_jwks_url and settings.jwt_issuer and settings.jwt_audience):
        return None
    from raas.adapters.jwt_verifier import JwksVerifier  # cryptography is only loaded when JWT is on

    return JwksVerifier(settings.jwt_jwks_url, settings.jwt_issuer, settings.jwt_audience)


@cache
def authenticator() -> Authenticator:
    return Authenticator(key_store(), tenant_store(), jwt_verifier())


# --- documents and search -------------------------------------------------------------------


@cache
def keyring() -> KmsKeyring:
    return KmsKeyring(clients("kms"), gate=tenant_data_gate)


@cache
def document_store() -> DynamoDocumentStore:
    return DynamoDocumentStore(clients("dynamodb"), get_settings().documents_table)


@cache
def object_store() -> S3ObjectStore:
    return S3ObjectStore(clients("s3"), get_settings().documents_bucket, keyring())


@cache
def embedder() -> Embedder:
    settings = get_settings()
    if settings.embedder == "openai":
        from raas.adapters.embedders import OpenAIEmbedder

        api_key = provider_key("openai")
        if not api_key:
            raise ServiceUnavailable("RAAS_EMBEDDER=openai needs an OpenAI API key", code="embedder_not_configured")
        return OpenAIEmbedder(
            api_key, settings.openai_embedding_model, timeout=settings.llm_timeout_seconds, max_retries=settings.llm_max_retries
        )
    if settings.embedder == "local":
        from raas.adapters.embedders import LocalMiniLMEmbedder

        return LocalMiniLMEmbedder()
    raise ValueError(f"unknown RAAS_EMBEDDER {settings.embedder!r}")


@cache
def search_index() -> SearchIndex:
    settings = get_settings()
    dimension = embedder_dimension()
    if settings.search_engine == "opensearch":
        from raas.adapters.search_opensearch import OpenSearchIndex, sigv4_client

        if not settings.opensearch_endpoint:
            raise ServiceUnavailable("RAAS_SEARCH_ENGINE=opensearch needs RAAS_OPENSEARCH_ENDPOINT", code="search_not_configured")
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        client = sigv4_client(settings.opensearch_endpoint, region, settings.opensearch_service)
        return OpenSearchIndex(client, dimension, settings.opensearch_service)
    from raas.adapters.search_embedded import EmbeddedSearch

    directory = Path(settings.search_dir) if settings.search_dir else Path(tempfile.gettempdir()) / "raas-search"
    return EmbeddedSearch(directory, dimension)


def embedder_dimension() -> int:
    """The vector size of the configured embedder, known without loading a model."""
    settings = get_settings()
    if settings.embedder == "openai":
        return {"text-embedding-3-large": 3072}.get(settings.openai_embedding_model, 1536)
    return 384


@cache
def reranker() -> Reranker | None:
    settings = get_settings()
    if settings.reranker == "bedrock":
        from raas.adapters.rerankers import BedrockReranker

        if not settings.bedrock_rerank_model_arn:
            raise ServiceUnavailable("RAAS_RERANKER=bedrock needs RAAS_BEDROCK_RERANK_MODEL_ARN", code="rerank_not_configured")
        return BedrockReranker(client("bedrock-agent-runtime"), settings.bedrock_rerank_model_arn)
    if settings.reranker == "local":
        from raas.adapters.rerankers import SentenceMaxSimReranker

        return SentenceMaxSimReranker(embedder())
    return None


_chat_clients: dict[str, ChatModel] = {}


def chat_model(model: ModelInfo) -> ChatModel:
    """The provider client for a model, made once per container; offline answers when no key is set."""
    settings = get_settings()
    if model.provider in _chat_clients:
        return _chat_clients[model.provider]
    api_key = provider_key(model.provider)
    chat: ChatModel
    if api_key:
        from raas.adapters.llm import provider_client

        base_url = {"openai": settings.openai_base_url, "anthropic": settings.anthropic_base_url}.get(model.provider)
        chat = provider_client(
            model.provider, api_key, timeout=settings.llm_timeout_seconds, max_retries=settings.llm_max_retries, base_url=base_url
        )
    elif settings.offline_answers:
        from raas.adapters.llm import OfflineExtractive

        chat = OfflineExtractive()
    else:
        raise ServiceUnavailable(f"no API key is configured for {model.provider}", code="llm_not_configured")
    _chat_clients[model.provider] = chat
    return chat


@cache
def usage_recorder() -> DynamoUsageRecorder | BufferedUsageRecorder:
    settings = get_settings()
    # Usage is queued for the payment provider only when the deployment bills through one.
    recorder = DynamoUsageRecorder(clients("dynamodb"), settings.usage_table, settings.outbox_table if settings.billing_enabled else None)
    if settings.usage_buffer_queue_url:
        return BufferedUsageRecorder(recorder, client("sqs"), settings.usage_buffer_queue_url)
    return recorder


@cache
def document_service() -> DocumentService:
    return DocumentService(document_store(), object_store(), search_index(), get_settings().presign_expires_seconds, audit=audit_log())


@cache
def ingest_service() -> IngestService:
    return IngestService(document_store(), object_store(), search_index(), embedder(), config_service(), tenant_store(), usage_recorder())


@cache
def query_service() -> QueryService:
    settings = get_settings()
    return QueryService(
        config_service(),
        search_index(),
        embedder(),
        reranker(),
        chat_model,
        document_store().generation,
        DynamoResponseCache(clients("dynamodb"), settings.queries_table, settings.response_cache_ttl_seconds),
        query_log(),
        usage_recorder(),
        quota_guard(),
    )


@cache
def query_log() -> DynamoQueryLog:
    return DynamoQueryLog(clients("dynamodb"), get_settings().queries_table)


_FACTORIES = (
    tenant_sessions,
    clients,
    tenant_store,
    key_store,
    config_service,
    tenant_service,
    key_service,
    jwt_verifier,
    authenticator,
    keyring,
    document_store,
    object_store,
    embedder,
    search_index,
    reranker,
    usage_recorder,
    document_service,
    ingest_service,
    query_service,
    query_log,
    usage_plan_keys,
    operator_usage_key,
    event_publisher,
    local_bus,
    audit_log,
    purger,
    billing_provider,
    lifecycle_service,
    quota_ledger,
    quota_guard,
    invoice_store,
    metering_service,
    billing_service,
    export_service,
    idempotency_store,
)


def reset() -> None:
    for factory in _FACTORIES:
        factory.cache_clear()
    _chat_clients.clear()
    get_settings.cache_clear()
    reset_clients()
