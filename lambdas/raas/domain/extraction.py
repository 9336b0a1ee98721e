"""Text extraction from uploaded bytes, per content type, with libraries that are well kept.

Heavy parsers are imported where they are used, so a Lambda that never sees a PDF never
loads pypdf. Everything that can blow up on hostile input is bounded, whatever the file's
compression ratio: each extraction runs under an `ExtractionBudget`, an absolute number of
bytes of XML and text the document may expand to (per tier, `max_extracted_bytes` in
tiers.json) and a deadline checked as the work goes (between reads of a zip member, between
PDF pages). A DOCX is read through a counting stream and parsed incrementally (lxml iterparse,
each paragraph dropped once its text is taken), so memory follows the text kept, not the XML.
What one parser call allocates (a pypdf page, a bs4 tree) is not counted here; the ingest path
runs PDF, DOCX and HTML in a memory-capped child for that (raas.adapters.extraction_sandbox).
"""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any

from raas.domain.documents import SUPPORTED_TYPES

MAX_EXTRACTED_CHARS = 20_000_000
MAX_PDF_PAGES = 2000
MAX_ZIP_UNCOMPRESSED = 200 * 1024 * 1024
MAX_ZIP_RATIO = 100
MAX_JSON_DEPTH = 64
# The default budget is the largest tier's; the ingest service passes the tenant's own.
DEFAULT_MAX_EXPANDED_BYTES = 200 * 1024 * 1024
# Well inside the ingest function's 5-minute timeout (stacks/data.py), leaving time to embed and index.
EXTRACTION_SECONDS = 120.0
_READ_SIZE = 1024 * 1024
_WORD = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_OFFICE_DOCUMENT_REL = "/officeDocument"


class ExtractionError(Exception):
    """The bytes did not yield text; the message is the reason shown to the tenant."""


@dataclass(frozen=True)
class ExtractionBudget:
    """What one document's extraction may use: bytes of XML and text it may expand to, and wall time."""

    max_expanded_bytes: int = DEFAULT_MAX_EXPANDED_BYTES
    seconds: float = EXTRACTION_SECONDS


@dataclass
class _Meter:
    """Counts bytes against the budget and watches the deadline; raises ExtractionError past either."""

    budget: ExtractionBudget
    used: int = 0
    deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.budget.seconds

    def spend(self, count: int) -> None:
        self.used += count
        if self.used > self.budget.max_expanded_bytes:
            raise ExtractionError(f"the document expands to more than {self.budget.max_expanded_bytes} bytes of XML/text")
        self.check_time()

    def check_time(self) -> None:
        if time.monotonic() >= self.deadline:
            raise ExtractionError(f"extracting the document's text took more than {self.budget.seconds:g} seconds")


class _CountingReader(io.RawIOBase):
    """A zip member read through the meter: the budget stops the inflating, not the member's declared size."""

    def __init__(self, member: Any, meter: _Meter):
        self.member = member
        self.meter = meter

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self.member.read(_READ_SIZE if size is None or size < 0 else min(size, _READ_SIZE))
        self.meter.spend(len(chunk))
        return bytes(chunk)


def extract_text(data: bytes, content_type: str, budget: ExtractionBudget | None = None) -> str:
    kind = SUPPORTED_TYPES.get(content_type)
    if kind is None:
        raise ExtractionError(f"unsupported content type {content_type}")
    meter = _Meter(budget or ExtractionBudget())
    try:
        if kind == "pdf":
            text = _pdf(data, meter)
        elif kind == "docx":
            text = _docx(data, meter)
        else:
            meter.spend(len(data))  # a text format decodes to at most as many characters as it has bytes
            text = {"txt": _plain, "md": _plain, "html": _html, "csv": _csv, "json": _json}[kind](data)
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


def _pdf(data: bytes, meter: _Meter) -> str:
    # pypdf bounds each decoded stream itself (FlateDecode output at pypdf.filters.ZLIB_MAX_OUTPUT_LENGTH,
    # 75 MB in 7.x, raising LimitReachedError: https://pypdf.readthedocs.io/en/stable/user/security.html);
    # the page count, the text kept and the deadline are ours, checked between pages.
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if len(reader.pages) > MAX_PDF_PAGES:
        raise ExtractionError(f"the PDF has more than {MAX_PDF_PAGES} pages")
    pages = []
    total = 0
    for page in reader.pages:
        meter.check_time()
        text = page.extract_text() or ""
        meter.spend(len(text))
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


def _docx(data: bytes, meter: _Meter) -> str:
    check_zip(data)
    archive = zipfile.ZipFile(io.BytesIO(data))
    # Declared sizes first, so an honest bomb is refused without inflating a byte; members that lie
    # about their size are caught by the counting reader (zipfile stops at the declared size and only
    # then checks the CRC, so the count, not the declaration, is what holds).
    declared_xml = sum(info.file_size for info in archive.infolist() if info.filename.endswith((".xml", ".rels")))
    if declared_xml > meter.budget.max_expanded_bytes:
        raise ExtractionError(f"the document expands to more than {meter.budget.max_expanded_bytes} bytes of XML/text")
    return _word_text(archive, _main_part(archive, meter), meter)


def _main_part(archive: zipfile.ZipFile, meter: _Meter) -> str:
    """The main document part's name, from the package relationships (word/document.xml in practice)."""
    from lxml import etree

    try:
        with archive.open("_rels/.rels") as member:
            rels = etree.parse(_CountingReader(member, meter), _xml_parser())  # entities, DTDs and network off
    except KeyError:
        return "word/document.xml"
    for rel in rels.getroot():
        if str(rel.get("Type", "")).endswith(_OFFICE_DOCUMENT_REL):
            return str(rel.get("Target", "")).lstrip("/")
    return "word/document.xml"


def _xml_parser() -> Any:
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _word_text(archive: zipfile.ZipFile, part: str, meter: _Meter) -> str:
    """Body paragraphs, then table rows as `cell | cell`, as python-docx gives them, parsed incrementally."""
    from lxml import etree

    try:
        member = archive.open(part)
    except KeyError:
        raise ExtractionError("the DOCX has no main document part") from None
    paragraphs: list[str] = []
    rows: list[str] = []
    cells: list[list[str]] = []  # the paragraphs of each open table cell, innermost last
    row: list[str] = []
    tables = 0
    kept = 0  # characters taken so far: past MAX_EXTRACTED_CHARS the rest would be cut anyway
    events = etree.iterparse(
        _CountingReader(member, meter),
        events=("start", "end"),
        tag=(f"{_WORD}p", f"{_WORD}tbl", f"{_WORD}tr", f"{_WORD}tc"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
    )
    with member:
        for event, element in events:
            tag = element.tag
            if event == "start":
                if tag == f"{_WORD}tbl":
                    tables += 1
                elif tag == f"{_WORD}tr" and tables == 1:
                    row = []
                elif tag == f"{_WORD}tc":
                    cells.append([])
                continue
            if tag == f"{_WORD}p":
                text = _paragraph_text(element)
                if tables == 0:
                    if text.strip():
                        paragraphs.append(text)
                        kept += len(text)
                elif cells:
                    cells[-1].append(text)
            elif tag == f"{_WORD}tc":
                cell = "\n".join(cells.pop()).strip() if cells else ""
                if tables == 1 and cell:
                    row.append(cell)
            elif tag == f"{_WORD}tr" and tables == 1:
                if row:
                    rows.append(" | ".join(row))
                    kept += len(rows[-1])
            elif tag == f"{_WORD}tbl":
                tables -= 1
            if tag == f"{_WORD}p" or tables == 0 or (tables == 1 and tag == f"{_WORD}tr"):
                _drop(element)  # its text is taken: free it and the siblings already read, a row at a time in tables
            if kept > MAX_EXTRACTED_CHARS:
                break
    return "\n\n".join(paragraphs + rows)


def _paragraph_text(paragraph: Any) -> str:
    pieces = []
    for node in paragraph.iter(f"{_WORD}t", f"{_WORD}tab", f"{_WORD}br", f"{_WORD}cr"):
        if node.tag == f"{_WORD}t":
            pieces.append(node.text or "")
        else:
            pieces.append("\t" if node.tag == f"{_WORD}tab" else "\n")
    return "".join(pieces)


def _drop(element: Any) -> None:
    element.clear()
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


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
