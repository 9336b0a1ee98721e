"""Documents API: inline and presigned uploads, listing, reading, deleting."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import Router

from raas.bootstrap import services
from raas.domain.console import ChunkPage
from raas.domain.documents import Document, DocumentStatus
from raas.domain.tenants import Role
from raas.handlers.api import JSON, lambda_handler, make_app, require_tenant, responses
from raas.handlers.idempotency import idempotent_post
from raas.handlers.schemas import DocumentAccepted, DocumentPage, InlineDocumentRequest, UploadRequest, UploadTicket
from raas.services.documents import NewDocument, decode_inline

router = Router()
TAGS = ["documents"]


@router.post(
    "/v1/documents",
    summary="Add a document (text or base64); indexing runs asynchronously",
    tags=TAGS,
    responses={
        **responses(202, DocumentAccepted, "Accepted", 413, 415),
        200: {"description": "Same content already present", "content": {JSON: {"model": DocumentAccepted}}},
    },
    middlewares=[idempotent_post],
)
def add_document(body: InlineDocumentRequest) -> Response[DocumentAccepted]:
    caller = require_tenant(app, Role.EDITOR)
    data, content_type = decode_inline(body.text, body.content_base64, body.content_type)
    document, created = services().document_service.create_inline(
        caller.tenant_id, caller.tier, NewDocument(body.title, data, content_type, body.metadata, body.source_uri)
    )
    return Response(
        202 if created else 200, JSON, DocumentAccepted(document_id=document.document_id, status=document.status, duplicate=not created)
    )


@router.post(
    "/v1/documents/uploads",
    summary="Get a presigned S3 PUT for a file",
    tags=TAGS,
    responses=responses(201, UploadTicket, "Upload ticket", 413, 415),
    middlewares=[idempotent_post],
)
def create_upload(body: UploadRequest) -> Response[UploadTicket]:
    caller = require_tenant(app, Role.EDITOR)
    upload = services().document_service.create_upload(
        caller.tenant_id,
        caller.tier,
        filename=body.filename,
        content_type=body.content_type,
        size=body.size,
        title=body.title,
        metadata=body.metadata,
        source_uri=body.source_uri,
    )
    ticket = UploadTicket(
        document_id=upload.document.document_id,
        status=upload.document.status,
        upload_url=upload.url,
        headers=upload.headers,
        expires_at=upload.expires_at,
    )
    return Response(201, JSON, ticket)


@router.get("/v1/documents", summary="List documents", tags=TAGS, responses=responses(200, DocumentPage, "A page of documents"))
def list_documents(
    status: Annotated[DocumentStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> DocumentPage:
    caller = require_tenant(app, Role.READER)
    documents, next_cursor = services().document_service.list(caller.tenant_id, status, limit, cursor)
    return DocumentPage(documents=documents, next_cursor=next_cursor)


@router.get(
    "/v1/documents/<document_id>", summary="A document's status and details", tags=TAGS, responses=responses(200, Document, "The document")
)
def get_document(document_id: str) -> Document:
    caller = require_tenant(app, Role.READER)
    return services().document_service.get(caller.tenant_id, document_id)


@router.get(
    "/v1/documents/<document_id>/chunks",
    summary="A document's chunks in order (an indexed document's; on OpenSearch Serverless after the collection's refresh)",
    tags=TAGS,
    responses=responses(200, ChunkPage, "A page of chunks"),
)
def list_chunks(
    document_id: str,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> ChunkPage:
    caller = require_tenant(app, Role.READER)
    return services().document_chunks.page(caller.tenant_id, document_id, limit, cursor)


@router.delete(
    "/v1/documents/<document_id>",
    summary="Delete a document, its chunks and its file",
    tags=TAGS,
    responses=responses(204, None, "Deleted"),
)
def delete_document(document_id: str) -> Response[None]:
    caller = require_tenant(app, Role.EDITOR)
    services().document_service.delete(caller.tenant_id, document_id, actor=caller.actor)
    return Response(204)


app = make_app()
app.include_router(router)
handler = lambda_handler(app)
