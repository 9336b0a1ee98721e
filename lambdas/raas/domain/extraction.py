"""Text extraction from uploaded bytes, per content type, with libraries that are well kept.

Heavy parsers are imported where they are used, so a Lambda that never sees a PDF never
loads pypdf. Everything that can blow up on hostile input is bounded: decompressed size for
zip-based formats, page counts, output length.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from typing import Any

from raas.domain.documents import SUPPORTED_TYPES

MAX_EXTRACTED_CHARS = 20_000_000
MAX_PDF_PAGES = 2000
MAX_ZIP_UNCOMPRESSED = 200 * 1024 * 1024
MAX_ZIP_RATIO = 100
MAX_JSON_DEPTH = 64


class ExtractionError(Exception):
    """The bytes did not yield text; the message is the reason shown to the tenant."""


def extract_text(data: bytes, content_type: str) -> str:
    kind = SUPPORTED_TYPES.get(content_type)
    if kind is None:
        raise ExtractionError(f"unsupported content type {content_type}")
    extractor = {"txt": _plain, "md": _plain, "html": _html, "pdf": _pdf, "docx": _docx, "csv": _csv, "json": _json}[kind]
    try:
        text = extractor(data)
    except ExtractionError:
        raise
    except Exception as exc:  # a parser's own error on a malformed file
        raise ExtractionError(f"could not read the {kind} file: {type(exc).__name__}: {exc}"[:500]) from exc
    text = text.replace("\x00", "").strip()
    if not text:
        raise ExtractionError(f"the {kind} file contains no text")
    return text[:MAX_EXTRACTED_CHARS]


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise ExtractionError("the file is binary, not text (does the content type match the file?)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _plain(data: bytes) -> str:
    return _decode(data)


def _html(data: bytes) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode(data), "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "svg"]):
        tag.decompose()
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return "\n".join(line for line in lines if line)


def _pdf(data: bytes) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if len(reader.pages) > MAX_PDF_PAGES:
        raise ExtractionError(f"the PDF has more than {MAX_PDF_PAGES} pages")
    pages = []
    total = 0
    for page in reader.pages:
        text = page.extract_text() or ""
        total += len(text)
        if total > MAX_EXTRACTED_CHARS:
            break
        pages.append(text)
    return "\n\n".join(pages)


def check_zip(data: bytes) -> None:
    """Refuses zip bombs before a parser inflates anything."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ExtractionError("the file is not a valid zip-based document") from exc
    total = sum(info.file_size for info in archive.infolist())
    if total > MAX_ZIP_UNCOMPRESSED or total > MAX_ZIP_RATIO * max(len(data), 1):
        raise ExtractionError(f"the document decompresses to {total} bytes, beyond the safe limit")


def _docx(data: bytes) -> str:
    check_zip(data)
    import docx

    document = docx.Document(io.BytesIO(data))
    parts = [p.text for p in document.paragraphs if p.text.strip()]
    for table in document.tables:
        for row in table.rows:
            cells = [cell.text.strip() for cell in row.cells if cell.text.strip()]
            if cells:
                parts.append(" | ".join(cells))
    return "\n\n".join(parts)


def _csv(data: bytes) -> str:
    rows = list(csv.reader(io.StringIO(_decode(data))))
    if not rows:
        return ""
    header, body = rows[0], rows[1:]
    if not body:
        return ", ".join(header)
    lines = []
    for row in body:
        pairs = [f"{h}: {v}" for h, v in zip(header, row, strict=False) if v.strip()]
        lines.append("; ".join(pairs))
    return "\n".join(lines)


def _json(data: bytes) -> str:
    try:
        value = json.loads(_decode(data))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ExtractionError(f"the JSON is not valid: {exc}"[:300]) from exc
    lines: list[str] = []
    _flatten(value, "", lines, 0)
    return "\n".join(lines)


def _flatten(value: Any, path: str, out: list[str], depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise ExtractionError("the JSON is nested too deeply")
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{path}.{key}" if path else str(key), out, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _flatten(item, f"{path}[{index}]", out, depth + 1)
    elif value is not None:
        out.append(f"{path}: {value}" if path else str(value))


def check_declared_type(data: bytes, content_type: str) -> None:
    """Refuses bytes that are not what their declared type says, and zip bombs, before any work
    is queued: a PDF starts with %PDF-, a DOCX is a zip that inflates within bounds, text is UTF-8."""
    kind = SUPPORTED_TYPES.get(content_type)
    if kind == "pdf":
        if not data.lstrip()[:5] == b"%PDF-":
            raise ExtractionError("the content is not a PDF")
    elif kind == "docx":
        if not data.startswith(b"PK\x03\x04"):
            raise ExtractionError("the content is not a DOCX (zip) file")
        check_zip(data)
    else:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise ExtractionError(f"the content is not UTF-8 text, as {content_type} must be") from None
