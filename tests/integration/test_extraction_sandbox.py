"""Risky formats are extracted in a child process with a hard memory cap; a document that needs
more fails with that reason instead of taking the process (and every tenant's ingestion) with it."""

from __future__ import annotations

import pytest

from raas.adapters.extraction_sandbox import SandboxedExtractor
from raas.bootstrap import services
from raas.domain.extraction import ExtractionBudget, ExtractionError, extract_text
from tests.conftest import TenantHandle
from tests.helpers import ApiClient
from tests.unit.test_chunking_extraction import _docx, _pdf

MIB = 1024 * 1024
BUDGET = ExtractionBudget(max_expanded_bytes=100 * MIB)


def _wide_html(paragraphs: int) -> bytes:
    """HTML whose parse tree costs far more memory than its text: tens of bytes of text, an element each."""
    return b"<html><body>" + b"<p><b>x</b> <i>y</i> word</p>" * paragraphs + b"</body></html>"


def test_binary_formats_come_out_of_the_child_as_they_do_in_process() -> None:
    extract = SandboxedExtractor()
    for data, content_type in (
        (_docx(["first paragraph", "second paragraph"]), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (_pdf("Hello from a PDF"), "application/pdf"),
        (b"<html><body><h1>Title</h1><p>Some text</p></body></html>", "text/html"),
    ):
        assert extract(data, content_type, BUDGET) == extract_text(data, content_type, BUDGET)


def test_a_parse_that_needs_more_memory_than_the_cap_fails_the_document_not_the_process() -> None:
    capped = SandboxedExtractor(base_address_space=256 * MIB, per_budget_byte=0)
    # 200,000 paragraphs: 5.6 MB, well within the byte budget, but several hundred MB as a bs4 tree
    with pytest.raises(ExtractionError, match=r"MiB of memory|MemoryError"):
        capped(_wide_html(200_000), "text/html", BUDGET)
    # under the same cap, the same shape at a hundredth of the size is extracted: memory, not the input, refused it
    assert capped(_wide_html(2_000), "text/html", BUDGET).startswith("x\ny\nword")


def test_a_reading_error_in_the_child_is_the_documents_reason() -> None:
    with pytest.raises(ExtractionError, match="could not read the pdf"):
        SandboxedExtractor()(b"not a pdf", "application/pdf", BUDGET)


def test_plain_text_stays_in_process() -> None:
    class NoChild(SandboxedExtractor):
        def memory_limit(self, budget: ExtractionBudget) -> int:
            raise AssertionError("plain text must not start a child")

    assert NoChild()(b"just text", "text/plain", BUDGET) == "just text"


def test_the_ingest_path_extracts_through_the_sandbox(api: ApiClient, tenant_a: TenantHandle, ingest_queue: object) -> None:
    assert isinstance(services().ingest_service.extract, SandboxedExtractor)
