from __future__ import annotations

import io
import json
import random
import struct
import zipfile
from collections.abc import Iterable

import pytest

from raas.domain import catalog
from raas.domain.chunking import chunk_text, count_tokens, structure_chunks, token_windows
from raas.domain.config import Chunking
from raas.domain.extraction import ExtractionBudget, ExtractionError, extract_text

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


W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
MIB = 1024 * 1024


def docx_of(body: Iterable[bytes], *, main_part: str = "word/document.xml", padding: int = 0) -> bytes:
    """A minimal DOCX whose main part is written piece by piece (so a 50 MB part never sits in memory),
    with `padding` bytes of incompressible media so that it passes the compression-ratio check."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'wordprocessingml.document.main+xml"/></Types>',
        )
        archive.writestr(
            "_rels/.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            f'officeDocument" Target="{main_part}"/></Relationships>',
        )
        with archive.open(main_part, "w") as member:
            member.write(f'<?xml version="1.0"?><w:document xmlns:w="{W_NS}"><w:body>'.encode())
            for piece in body:
                member.write(piece)
            member.write(b"</w:body></w:document>")
        if padding:
            filler = random.Random(12).randbytes(padding)  # noqa: S311 - deterministic filler, not a secret
            archive.writestr("word/media/image1.png", filler, zipfile.ZIP_STORED)
    return buffer.getvalue()


def paragraphs_bomb(total: int) -> Iterable[bytes]:
    """Repetitive paragraphs, `total` bytes of them: what a DOCX bomb carries."""
    block = b"<w:p><w:r><w:t>boom</w:t></w:r></w:p>" * 10_000
    for _ in range(total // len(block)):
        yield block


def whitespace_body(total: int) -> Iterable[bytes]:
    """One paragraph of text, then `total` bytes of blank XML between empty paragraphs: many bytes of XML,
    little tree, so the old code (python-docx drops blank text) read it cheaply and indexed it."""
    yield b"<w:p><w:r><w:t>Budget canary paragraph.</w:t></w:r></w:p>"
    gap = b"<w:p/>" + b" " * (256 * 1024)
    for _ in range(total // len(gap)):
        yield gap


def test_a_docx_bomb_within_the_ratio_check_is_refused_by_its_absolute_size() -> None:
    bomb = docx_of(paragraphs_bomb(50 * MIB), padding=600_000)
    assert len(bomb) < 2 * MIB  # small on the wire, 50 MB of XML inside, and the ratio check lets it through
    with pytest.raises(ExtractionError, match=f"more than {20 * MIB} bytes of XML/text"):
        extract_text(bomb, DOCX, ExtractionBudget(max_expanded_bytes=catalog.tier_limits("free").max_extracted_bytes))


def test_a_main_part_that_escapes_the_declared_size_check_is_stopped_while_it_inflates() -> None:
    # The relationships may name any part as the main document; the declared-size check counts only .xml
    # and .rels members, so this one is caught by the counting reader after 1 MiB of inflating.
    bomb = docx_of(paragraphs_bomb(3 * MIB), main_part="word/main.dat", padding=40_000)
    with pytest.raises(ExtractionError, match=f"more than {MIB} bytes of XML/text"):
        extract_text(bomb, DOCX, ExtractionBudget(max_expanded_bytes=MIB))


def test_a_member_lying_about_its_size_is_refused_not_inflated_past_it() -> None:
    honest = docx_of(paragraphs_bomb(3 * MIB), padding=40_000)
    # Rewrite the central directory's uncompressed size of word/document.xml to 1000 bytes.
    name = b"word/document.xml"
    header = honest.index(b"PK\x01\x02")  # central directory entries: the name starts at offset 46, the size at 24
    while honest[header + 46 : header + 46 + len(name)] != name:
        header = honest.index(b"PK\x01\x02", header + 4)
    lying = honest[: header + 24] + struct.pack("<I", 1000) + honest[header + 28 :]
    assert zipfile.ZipFile(io.BytesIO(lying)).getinfo("word/document.xml").file_size == 1000
    with pytest.raises(ExtractionError, match="could not read the docx file"):
        extract_text(lying, DOCX, ExtractionBudget(max_expanded_bytes=MIB))


def test_the_budget_is_per_tier() -> None:
    document = docx_of(whitespace_body(24 * MIB), padding=300_000)
    assert len(document) < 1 * MIB
    free = ExtractionBudget(max_expanded_bytes=catalog.tier_limits("free").max_extracted_bytes)
    smb = ExtractionBudget(max_expanded_bytes=catalog.tier_limits("smb").max_extracted_bytes)
    with pytest.raises(ExtractionError, match="bytes of XML/text"):
        extract_text(document, DOCX, free)
    assert extract_text(document, DOCX, smb) == "Budget canary paragraph."
    limits = [catalog.tier_limits(tier).max_extracted_bytes for tier in ("free", "smb", "midmarket", "enterprise")]
    assert limits == sorted(limits)
    assert limits[0] >= 4 * catalog.tier_limits("free").max_document_bytes


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"x" * 2048, "text/plain"),
        (b'{"k": "' + b"v" * 2048 + b'"}', "application/json"),
        (b"<p>" + b"w " * 1024 + b"</p>", "text/html"),
    ],
)
def test_text_formats_are_held_to_the_budget(data: bytes, content_type: str) -> None:
    with pytest.raises(ExtractionError, match="more than 1024 bytes of XML/text"):
        extract_text(data, content_type, ExtractionBudget(max_expanded_bytes=1024))


def test_extraction_past_its_deadline_fails_with_a_reason() -> None:
    with pytest.raises(ExtractionError, match="took more than 0 seconds"):
        extract_text(_docx(["a paragraph"]), DOCX, ExtractionBudget(seconds=0))
    with pytest.raises(ExtractionError, match="took more than 0 seconds"):
        extract_text(_pdf("a page"), "application/pdf", ExtractionBudget(seconds=0))
