from __future__ import annotations

import io
import json
import zipfile

import pytest

from raas.domain.chunking import chunk_text, count_tokens, structure_chunks, token_windows
from raas.domain.config import Chunking
from raas.domain.extraction import ExtractionError, extract_text

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def test_token_windows_overlap_and_cover_everything() -> None:
    text = " ".join(f"w{i}" for i in range(25))
    windows = token_windows(text, size=10, overlap=3)
    assert [count_tokens(w) for w in windows] == [10, 10, 10, 4]
    assert windows[0].split()[-3:] == windows[1].split()[:3]
    assert windows[-1].endswith("w24")


def test_windows_are_slices_of_the_original_text() -> None:
    text = "Alpha,  beta!\n\nGamma (delta)."
    for window in token_windows(text, size=3, overlap=1):
        assert window in text


def test_structure_chunks_follow_headings_and_paragraphs() -> None:
    text = "Intro line.\n\n# Refunds\n\nWithin 30 days.\n\nTo the card.\n\n## Shipping\n\nWorldwide."
    chunks = structure_chunks(text, size=50, overlap=5)
    assert [(c.section, c.text) for c in chunks] == [
        (None, "Intro line."),
        ("Refunds", "# Refunds\n\nWithin 30 days.\n\nTo the card."),
        ("Shipping", "## Shipping\n\nWorldwide."),
    ]


def test_structure_packs_paragraphs_up_to_the_size_and_windows_long_ones() -> None:
    paragraphs = [" ".join(["word"] * 8) for _ in range(4)]
    chunks = structure_chunks("\n\n".join(paragraphs), size=20, overlap=2)
    assert [count_tokens(c.text) for c in chunks] == [16, 16]
    long = structure_chunks(" ".join(["x"] * 45), size=20, overlap=5)
    assert [count_tokens(c.text) for c in long] == [20, 20, 15]


def test_chunk_text_uses_the_configured_strategy() -> None:
    text = "# A\n\none two three\n\n# B\n\nfour five six"
    assert len(chunk_text(text, Chunking(strategy="structure", size=64, overlap=0))) == 2
    assert len(chunk_text(text, Chunking(strategy="tokens", size=64, overlap=0))) == 1


def _docx(paragraphs: list[str]) -> bytes:
    import docx

    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "cell one"
    table.rows[0].cells[1].text = "cell two"
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _pdf(text: str) -> bytes:
    """A one-page PDF with a text object, written by hand (no PDF writer needed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer << /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "content_type", "expected"),
    [
        (b"plain words", "text/plain", "plain words"),
        ("caf\u00e9".encode(), "text/plain", "caf\u00e9"),
        (b"\xef\xbb\xbfwith bom", "text/plain", "with bom"),
        (b"# Title\n\nbody", "text/markdown", "# Title\n\nbody"),
        (
            b"<html><head><script>evil()</script><style>p{}</style></head><body><h1>Hi</h1><p>there</p></body></html>",
            "text/html",
            "Hi\nthere",
        ),
        (b"name,age\nAda,36\nAlan,41", "text/csv", "name: Ada; age: 36\nname: Alan; age: 41"),
        (json.dumps({"a": {"b": [1, "two"]}, "c": None}).encode(), "application/json", "a.b[0]: 1\na.b[1]: two"),
    ],
)
def test_text_formats(data: bytes, content_type: str, expected: str) -> None:
    assert extract_text(data, content_type) == expected


def test_docx_paragraphs_and_tables() -> None:
    text = extract_text(_docx(["First paragraph.", "Second one."]), DOCX)
    assert text == "First paragraph.\n\nSecond one.\n\ncell one | cell two"


def test_pdf_text() -> None:
    assert "Hello from a PDF" in extract_text(_pdf("Hello from a PDF"), "application/pdf")


@pytest.mark.parametrize(
    ("data", "content_type", "reason"),
    [
        (b"", "text/plain", "no text"),
        (b"   \n\t ", "text/plain", "no text"),
        (b"\x00\x01\x02binary", "text/plain", "binary"),
        (b"not a pdf", "application/pdf", "could not read the pdf"),
        (b"not a zip", DOCX, "not a valid zip"),
        (b"{broken", "application/json", "not valid"),
        (b"<html><script>only()</script></html>", "text/html", "no text"),
        (b"x", "image/png", "unsupported"),
    ],
)
def test_files_without_text_fail_with_a_reason(data: bytes, content_type: str, reason: str) -> None:
    with pytest.raises(ExtractionError, match=reason):
        extract_text(data, content_type)


def test_zip_bombs_are_refused_before_inflating() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\x00" * (50 * 1024 * 1024))
    assert len(buffer.getvalue()) < 200_000
    with pytest.raises(ExtractionError, match="beyond the safe limit"):
        extract_text(buffer.getvalue(), DOCX)


def test_deeply_nested_json_is_refused() -> None:
    nested = "[" * 100 + "1" + "]" * 100
    with pytest.raises(ExtractionError, match="nested too deeply"):
        extract_text(nested.encode(), "application/json")
