"""Chunking: token windows with overlap, and a structure-aware splitter (headings, paragraphs).

A "token" here is a word or a punctuation mark (`\\w+|[^\\w\\s]`), which tracks model
tokens closely enough for sizing (about 1.3 BPE tokens per word) and needs no vocabulary
download. Chunks are slices of the original text, so whitespace and formatting survive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from raas.domain.config import Chunking, ChunkingStrategy

_TOKEN = re.compile(r"\w+|[^\w\s]")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class TextChunk:
    text: str
    section: str | None = None


def count_tokens(text: str) -> int:
    return sum(1 for _ in _TOKEN.finditer(text))


def token_windows(text: str, size: int, overlap: int) -> list[str]:
    spans = [m.span() for m in _TOKEN.finditer(text)]
    if not spans:
        return []
    step = max(size - overlap, 1)
    windows = []
    for start in range(0, len(spans), step):
        window = spans[start : start + size]
        windows.append(text[window[0][0] : window[-1][1]])
        if start + size >= len(spans):
            break
    return windows


def _sections(text: str) -> list[tuple[str | None, str]]:
    """(heading, body) pairs; text before the first heading has no heading."""
    matches = list(_HEADING.finditer(text))
    if not matches:
        return [(None, text)]
    sections: list[tuple[str | None, str]] = []
    if text[: matches[0].start()].strip():
        sections.append((None, text[: matches[0].start()]))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        sections.append((match.group(2).strip(), text[match.start() : end]))
    return sections


def structure_chunks(text: str, size: int, overlap: int) -> list[TextChunk]:
    """Packs whole paragraphs into chunks of at most `size` tokens, never across a heading."""
    chunks: list[TextChunk] = []
    for heading, body in _sections(text):
        pending: list[str] = []
        pending_tokens = 0
        for paragraph in (p.strip() for p in _PARAGRAPH_BREAK.split(body)):
            if not paragraph:
                continue
            tokens = count_tokens(paragraph)
            if tokens > size:  # a paragraph too long for one chunk falls back to windows
                if pending:
                    chunks.append(TextChunk("\n\n".join(pending), heading))
                    pending, pending_tokens = [], 0
                chunks.extend(TextChunk(w, heading) for w in token_windows(paragraph, size, overlap))
                continue
            if pending and pending_tokens + tokens > size:
                chunks.append(TextChunk("\n\n".join(pending), heading))
                pending, pending_tokens = [], 0
            pending.append(paragraph)
            pending_tokens += tokens
        if pending:
            chunks.append(TextChunk("\n\n".join(pending), heading))
    return chunks


def chunk_text(text: str, config: Chunking) -> list[TextChunk]:
    if config.strategy is ChunkingStrategy.TOKENS:
        return [TextChunk(w) for w in token_windows(text, config.size, config.overlap)]
    return structure_chunks(text, config.size, config.overlap)
