"""The embedded search engine (local default): SQLite FTS5 for BM25, numpy for vectors.

One SQLite file per tenant (`<dir>/tenant_{id}_documents.sqlite`), so tenants are separate
files on disk and the state directory persists them. BM25 is FTS5's (k1=1.2, b=0.75, porter
stemming); vectors are L2-normalised float32 and scored by cosine with a matrix product,
cached in memory per tenant until the tenant's index changes.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aws_lambda_powertools import Logger

from raas.adapters.fts5_bm25 import TOKENIZER, Postings, QueryTokens, extended, read_postings
from raas.adapters.search_common import check_index, index_name
from raas.domain.documents import Chunk, chunk_id
from raas.domain.ports import IndexedChunks
from raas.domain.retrieval import Condition, Hit, matches

logger = Logger(service="raas")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY, document_id TEXT NOT NULL, title TEXT NOT NULL, text TEXT NOT NULL,
    position INTEGER NOT NULL, metadata TEXT NOT NULL, vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks(document_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    title, text, content='chunks', content_rowid='rowid', tokenize='{tokenizer}'
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, title, text) VALUES (new.rowid, new.title, new.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, title, text) VALUES ('delete', old.rowid, old.title, old.text);
END;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
-- the rowids each write added or removed, so that a reader holding the vectors in memory reads only those
CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, chunk_rowid INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS chunks_log_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO changes(chunk_rowid) VALUES (new.rowid);
END;
CREATE TRIGGER IF NOT EXISTS chunks_log_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO changes(chunk_rowid) VALUES (old.rowid);
END;
-- a new index starts at a random version: memory caches keyed on a version never take a dropped and
-- recreated index for the one they read
INSERT OR IGNORE INTO meta VALUES ('version', abs(random() % 1000000000000));
""".replace("{tokenizer}", TOKENIZER)

_TERM = re.compile(r"\w+", re.UNICODE)
MAX_QUERY_TERMS = 64


_WEIGHTS = {"title": 0.5, "text": 1.0}  # the columns' BM25 weights, for FTS5 and the postings in memory alike
_BM25 = f"bm25(chunks_fts, {_WEIGHTS['title']}, {_WEIGHTS['text']})"  # weights in the table's column order
_LEXICAL_TOP = f"SELECT rowid, {_BM25} AS score FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY score LIMIT ?"  # noqa: S608 - constants
_TIE_WINDOW = 64  # matches read past the k-th, to hold those tied with it
_LEXICAL_ROWS = "SELECT chunk_id, document_id, title, text, position, metadata, rowid FROM chunks WHERE rowid IN ({})"
_KEPT_PER_THREAD = 8  # the connections a thread keeps open, to the indexes it used last (`EmbeddedSearch._bound`)


def _top_lexical(db: sqlite3.Connection, match: str, k: int) -> list[tuple[Any, ...]] | None:
    """The k best matches, scored in FTS5 alone and joined to their chunks afterwards: when most of a large
    index matches (common words), joining every match before sorting took 17 ms at 10,000 chunks.
    Ties keep the full ordering (score, then chunk id): FTS5 hands over a window past the k-th match, every
    match tied with the k-th is in it, and the window is ordered with chunk ids. None when a tie runs past
    the window, where only ranking every match decides."""
    window = k + max(k, _TIE_WINDOW)
    top = db.execute(_LEXICAL_TOP, (match, window)).fetchall()
    if len(top) > k:
        kth = top[k - 1][1]
        if len(top) == window and top[-1][1] == kth:
            return None
        top = [row for row in top if row[1] <= kth]  # bm25() is lower for better matches
    if not top:
        return []
    scores = {rowid: -score for rowid, score in top}
    rows = db.execute(_LEXICAL_ROWS.format(",".join("?" * len(scores))), list(scores)).fetchall()
    ranked = sorted(rows, key=lambda r: (-scores[r[6]], r[0]))[:k]
    return [(*r[:6], scores[r[6]]) for r in ranked]


def query_terms(text: str) -> list[str]:
    """A user's text as the terms it is searched for: lower-cased words, each once, at most MAX_QUERY_TERMS."""
    return list(dict.fromkeys(t.lower() for t in _TERM.findall(text)))[:MAX_QUERY_TERMS]


def fts_query(text: str) -> str | None:
    """A user's text as an FTS5 OR-query of quoted terms (no FTS syntax reaches SQLite)."""
    terms = query_terms(text)
    return _or_query(terms) if terms else None


def _or_query(terms: list[str]) -> str:
    return " OR ".join(f'"{t}"' for t in terms)


@dataclass
class _Lexicon:
    """A tenant's postings in memory, and when to read them again (`EmbeddedSearch._postings`)."""

    postings: Postings | None = None
    seen_version: int = -1  # the index version the last query found
    fts5_seconds: float = 0.0  # what FTS5 has spent on queries at that version
    read_seconds: float = 0.0  # what reading the postings took last time
    reading: threading.Lock = field(default_factory=threading.Lock)  # held by the thread reading them, if any
    reader: threading.Thread | None = None


def _index_version(db: sqlite3.Connection) -> int:
    """The index's version: every write adds one."""
    return int(db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0])


_KEPT_CHANGES = 100_000  # change-log rows kept; a reader further behind reads every vector again
_INCREMENTAL_ROWS = 10_000  # more changed rows than this (or than SQLite's bound parameters allow): read everything
_MATRIX_ROWS = "SELECT chunk_id, document_id, title, position, metadata, text, vector, rowid FROM chunks"


@dataclass
class _Matrix:
    version: int
    seq: int  # the last change-log entry these vectors include
    ids: list[str]
    rows: list[tuple[str, str, str, int, str]]  # chunk_id, document_id, title, position, metadata
    texts: list[str]
    vectors: np.ndarray
    rowids: list[int]

    @classmethod
    def of(cls, version: int, seq: int, rows: list[tuple[Any, ...]], dimension: int) -> _Matrix:
        """From rows of `_MATRIX_ROWS`."""
        vectors = (
            np.frombuffer(b"".join(r[6] for r in rows), dtype=np.float32).reshape(len(rows), dimension)
            if rows
            else np.zeros((0, dimension), np.float32)
        )
        return cls(version, seq, [r[0] for r in rows], [r[:5] for r in rows], [r[5] for r in rows], vectors, [r[7] for r in rows])

    def changed(self, version: int, seq: int, touched: set[int], fresh: list[tuple[Any, ...]], dimension: int) -> _Matrix:
        """These vectors without the rows a write touched, plus those rows as they are now (`fresh`)."""
        added = _Matrix.of(version, seq, fresh, dimension)
        if not touched or min(touched) > max(self.rowids, default=-1):  # only rows after these were added (an ingest)
            return _Matrix(
                version,
                seq,
                self.ids + added.ids,
                self.rows + added.rows,
                self.texts + added.texts,
                np.concatenate([self.vectors, added.vectors]),
                self.rowids + added.rowids,
            )
        keep = [i for i, rowid in enumerate(self.rowids) if rowid not in touched]
        return _Matrix(
            version,
            seq,
            [self.ids[i] for i in keep] + added.ids,
            [self.rows[i] for i in keep] + added.rows,
            [self.texts[i] for i in keep] + added.texts,
            np.concatenate([self.vectors[keep], added.vectors]),
            [self.rowids[i] for i in keep] + added.rowids,
        )


def _only_appended(db: sqlite3.Connection, postings: Postings) -> bool:
    """Whether every write since `postings` (its change-log entry) only added rows after its last one, and the log
    still reaches back to it; if not (a row it holds was deleted or replaced, too much changed, or the file is
    another index now), only reading the whole index again tells."""
    oldest = db.execute("SELECT min(seq) FROM changes").fetchone()[0]
    count, lowest = db.execute("SELECT count(*), min(chunk_rowid) FROM changes WHERE seq > ?", (postings.seq,)).fetchone()
    if count and (oldest > postings.seq + 1 or count > _INCREMENTAL_ROWS):
        return False
    if not postings.size:
        return True
    last = db.execute("SELECT chunk_id FROM chunks WHERE rowid = ?", (int(postings.rowids[-1]),)).fetchone()
    return last is not None and last[0] == postings.chunk_ids[-1] and (not count or lowest > int(postings.rowids[-1]))


def _rows_after(db: sqlite3.Connection, postings: Postings) -> list[tuple[int, str, str, str]]:
    """The rows (rowid, chunk_id, title, text) the writes since `postings` added and did not remove again."""
    return db.execute(
        "SELECT rowid, chunk_id, title, text FROM chunks WHERE rowid IN (SELECT chunk_rowid FROM changes WHERE seq > ?) ORDER BY rowid",
        (postings.seq,),
    ).fetchall()


@dataclass(eq=False)
class _Reused:
    """A connection a thread keeps to one index file: the file's inode and how many drops of the index this process
    had made when it was opened tell whether it still reaches the current index."""

    connection: sqlite3.Connection
    inode: int
    drops: int
    busy: bool = False
    closed: bool = False  # by `EmbeddedSearch.close`, from another thread

    def current(self, path: Path, drops: int) -> bool:
        if self.closed or drops != self.drops:
            return False
        try:
            return os.stat(path).st_ino == self.inode
        except FileNotFoundError:
            return False


class _ThreadConnections(threading.local):
    def __init__(self) -> None:
        self.by_tenant: OrderedDict[str, _Reused] = OrderedDict()  # least recently used first


class EmbeddedSearch:
    visible_at_once = True  # one SQLite transaction per write; readers see it when it commits

    def __init__(self, directory: Path, dimension: int):
        self.directory = directory
        self.dimension = dimension
        self.directory.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._matrices: dict[str, _Matrix] = {}
        self._lexicons: dict[str, _Lexicon] = {}
        self._schema_applied: set[str] = set()
        self._query_tokens = QueryTokens()
        # One idle connection held open per index file this process uses (see `_keep_open`): tenant -> (connection, inode).
        self._keepers: dict[str, tuple[sqlite3.Connection, int]] = {}
        self._threads_connections = _ThreadConnections()
        # Every thread's, for `close`; weak, so that a thread's connections close when it ends (its cache is freed).
        self._every_connection: weakref.WeakSet[_Reused] = weakref.WeakSet()
        self._drops: dict[str, int] = {}  # tenant -> indexes of it this process dropped: a cached connection of an older one is stale

    # --- plumbing ---------------------------------------------------------------------------
    def _path(self, tenant_id: str) -> Path:
        name = check_index(tenant_id, index_name(tenant_id))
        return self.directory / f"{name}.sqlite"

    def _lock(self, tenant_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(tenant_id, threading.Lock())

    @contextmanager
    def _connect(self, tenant_id: str) -> Iterator[sqlite3.Connection]:
        """A connection to the tenant's index file (created if missing), this thread's own, kept open between uses.

        Opening one per operation cost two connections a query, each a dozen system calls (stats, locks, fchown)
        and page reads into an empty cache: 0.90 ms a query against 0.51 ms with kept connections, and 69 system
        calls a request against 36 under 8 clients (docs/performance.md, "8 clients against 1, like for like").
        A connection serves one thread (sqlite3's default), so a thread's cache needs no lock. A use leaves no transaction open, so a
        kept connection holds no snapshot (it would see no later write and block checkpoints). A connection
        whose file was dropped since, by this process or another (a different inode), is closed and replaced; a
        use that raised closes its connection rather than keep one in an unknown state."""
        path = self._path(tenant_id)
        mine = self._threads_connections.by_tenant
        cached = mine.get(tenant_id)
        if cached is not None and not cached.busy and not cached.current(path, self._drops.get(tenant_id, 0)):
            self._forget(tenant_id, cached)
            cached = None
        if cached is not None and cached.busy:  # a use nested in another of the same thread: a connection of its own
            reused, keep = self._open(tenant_id, path), False
        else:
            reused, keep = cached or self._open(tenant_id, path), True
            mine[tenant_id] = reused
            mine.move_to_end(tenant_id)
            self._bound(mine)
        reused.busy = True
        try:
            yield reused.connection
        except BaseException:
            reused.busy = False
            self._forget(tenant_id, reused)
            raise
        reused.busy = False
        if reused.connection.in_transaction:  # a read's BEGIN: end its snapshot
            reused.connection.rollback()
        if not keep:
            self._forget(tenant_id, reused)

    def _bound(self, mine: OrderedDict[str, _Reused]) -> None:
        """A thread keeps its connections to the indexes it used last only: a thread that walks every tenant (the
        reconciliation at start, an operator's listing) would otherwise hold two descriptors for each of them. The
        engine's idle connection to each file (`_keep_open`) stays, so closing one of these checkpoints nothing."""
        for tenant_id in list(mine)[: max(0, len(mine) - _KEPT_PER_THREAD)]:
            if not mine[tenant_id].busy:
                self._forget(tenant_id, mine[tenant_id])

    def _open(self, tenant_id: str, path: Path) -> _Reused:
        connection = sqlite3.connect(path, timeout=30, check_same_thread=False)  # `close` may close it from another thread
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            if tenant_id not in self._schema_applied:  # an index an earlier version wrote gains the change log before any read
                connection.executescript(_SCHEMA)
                self._schema_applied.add(tenant_id)
            connection.create_function("raas_matches", 2, _sql_matches, deterministic=True)
            inode = os.stat(path).st_ino
        except BaseException:
            connection.close()
            raise
        self._keep_open(tenant_id, path)
        reused = _Reused(connection, inode, self._drops.get(tenant_id, 0))
        with self._locks_guard:
            self._every_connection.add(reused)
        return reused

    def _forget(self, tenant_id: str, reused: _Reused) -> None:
        mine = self._threads_connections.by_tenant
        if mine.get(tenant_id) is reused:
            del mine[tenant_id]
        with self._locks_guard:
            self._every_connection.discard(reused)
        reused.connection.close()

    def _keep_open(self, tenant_id: str, path: Path) -> None:
        """Holds one idle connection to the index file, so that closing the others is cheap. When the last connection
        to a WAL database closes, SQLite checkpoints the WAL into the database and deletes the WAL and shared-memory
        files (https://www.sqlite.org/wal.html, "the WAL file is ... deleted when the last connection to the database
        closes"), and the next connection creates them again: with a connection per operation that was a checkpoint
        for every write and most reads (1.1 ms a write measured on an FTS5 table, 0.57 ms with the file kept open).
        The kept connection runs no statement after attaching, so it holds no snapshot and blocks no checkpoint;
        SQLite still checkpoints as the WAL grows (every 1,000 pages by default). Keyed by inode: a file another
        process dropped and re-created is a new file, and the old connection is let go."""
        try:
            inode = os.stat(path).st_ino
        except FileNotFoundError:
            return
        with self._locks_guard:
            kept = self._keepers.get(tenant_id)
            if kept is not None and kept[1] == inode:
                return
            keeper = sqlite3.connect(path, timeout=30, check_same_thread=False)
            keeper.execute("PRAGMA journal_mode=WAL")  # attaches it to the WAL index: it now counts as a connection
            self._keepers[tenant_id] = (keeper, inode)
        if kept is not None:
            kept[0].close()

    def _let_go(self, tenant_id: str) -> None:
        with self._locks_guard:
            kept = self._keepers.pop(tenant_id, None)
        if kept is not None:
            kept[0].close()

    def close(self) -> None:
        """Waits for postings being read, then closes the connections held open (the last close checkpoints each
        WAL into its database)."""
        for tenant_id in list(self._lexicons):
            self.wait_for_postings(tenant_id)
        with self._locks_guard:
            kept, self._every_connection = list(self._every_connection), weakref.WeakSet()
        for reused in kept:  # the threads' own connections, idle once requests have drained
            reused.closed = True
            reused.connection.close()
        for tenant_id in list(self._keepers):
            self._let_go(tenant_id)

    # --- writes -----------------------------------------------------------------------------
    def ensure_index(self, tenant_id: str) -> None:
        if tenant_id in self._schema_applied and self._path(tenant_id).exists():
            return  # this process wrote the schema into this file (another process's drop removes the file)
        with self._lock(tenant_id), self._connect(tenant_id) as db:
            db.executescript(_SCHEMA)

    def replace(self, tenant_id: str, chunks: list[Chunk], vectors: list[list[float]], remove: Sequence[IndexedChunks]) -> tuple[str, ...]:
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        rows = []
        for chunk, vector in zip(chunks, vectors, strict=True):
            array = np.asarray(vector, dtype=np.float32)
            if array.shape != (self.dimension,):
                raise ValueError(f"vector has shape {array.shape}, index expects ({self.dimension},)")
            norm = float(np.linalg.norm(array)) or 1.0
            rows.append(
                (
                    chunk.chunk_id,
                    chunk.document_id,
                    chunk.title,
                    chunk.text,
                    chunk.position,
                    json.dumps(chunk.metadata),
                    (array / norm).tobytes(),
                )
            )
        self.ensure_index(tenant_id)
        # one transaction: searchers see the old set or the new set, never half
        replaced = {old.document_id for old in remove} | {chunk.document_id for chunk in chunks}
        with self._lock(tenant_id), self._connect(tenant_id) as db, db:
            for document_id in replaced:
                db.execute("DELETE FROM chunks WHERE document_id = ?", (document_id,))
            db.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            db.execute("UPDATE meta SET value = value + 1 WHERE key = 'version'")
            db.execute("DELETE FROM changes WHERE seq <= (SELECT max(seq) FROM changes) - ?", (_KEPT_CHANGES,))
        return tuple(chunk.chunk_id for chunk in chunks)

    def delete_document(self, tenant_id: str, document_id: str, chunk_count: int, engine_ids: Sequence[str] = ()) -> None:
        if not self._path(tenant_id).exists():
            return
        with self._lock(tenant_id), self._connect(tenant_id) as db, db:
            db.execute("DELETE FROM chunks WHERE document_id = ?", (document_id,))
            db.execute("UPDATE meta SET value = value + 1 WHERE key = 'version'")

    def drop_index(self, tenant_id: str) -> None:
        with self._lock(tenant_id):
            self._drops[tenant_id] = self._drops.get(tenant_id, 0) + 1  # a new file may reuse the inode: no cached connection survives
            self._let_go(tenant_id)
            for suffix in ("", "-wal", "-shm"):
                Path(str(self._path(tenant_id)) + suffix).unlink(missing_ok=True)
            self._matrices.pop(tenant_id, None)
            self._lexicons.pop(tenant_id, None)
            self._schema_applied.discard(tenant_id)

    # --- reads ------------------------------------------------------------------------------
    def lexical(self, tenant_id: str, query: str, k: int, conditions: list[Condition]) -> list[Hit]:
        terms = query_terms(query)
        if not terms or not self._path(tenant_id).exists():
            return []
        match = _or_query(terms)
        with self._connect(tenant_id) as db:
            db.execute("BEGIN")  # one snapshot: the version, the postings of that version and the rows they name
            rows = None if conditions else self._top_in_memory(db, tenant_id, terms, k)
            if rows is None and not conditions:
                started = time.perf_counter()
                rows = _top_lexical(db, match, k)
                self._lexicon(tenant_id).fts5_seconds += time.perf_counter() - started
            if rows is None:  # filtered, or a tie at the k-th score: rank every match with its chunk
                sql = (
                    f"SELECT c.chunk_id, c.document_id, c.title, c.text, c.position, c.metadata, -{_BM25} AS score "  # noqa: S608 - constants
                    "FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid WHERE chunks_fts MATCH ?"
                )
                params: list[Any] = [match]
                if conditions:
                    sql += " AND raas_matches(c.metadata, ?)"
                    params.append(_conditions_json(conditions))
                sql += " ORDER BY score DESC, c.chunk_id LIMIT ?"
                params.append(k)
                rows = db.execute(sql, params).fetchall()
        return [Hit(r[0], r[1], r[2], r[3], r[4], float(r[6]), json.loads(r[5])) for r in rows]

    def _top_in_memory(self, db: sqlite3.Connection, tenant_id: str, terms: list[str], k: int) -> list[tuple[Any, ...]] | None:
        """The k best chunks scored from the postings in memory (the same numbers as FTS5's bm25(), see
        `fts5_bm25`); None when the postings are not current or a term is a phrase of several tokens."""
        phrases = self._query_tokens.of(terms)
        if any(len(tokens) != 1 for tokens in phrases):
            return None
        postings = self._postings(db, tenant_id)
        if postings is None:
            return None
        top = postings.top([tokens[0] for tokens in phrases], k)
        if not top:
            return []
        found = {r[6]: r for r in db.execute(_LEXICAL_ROWS.format(",".join("?" * len(top))), [rowid for rowid, _ in top])}
        return [(*found[rowid][:6], score) for rowid, score in top]

    def _lexicon(self, tenant_id: str) -> _Lexicon:
        with self._locks_guard:
            return self._lexicons.setdefault(tenant_id, _Lexicon())

    def _postings(self, db: sqlite3.Connection, tenant_id: str) -> Postings | None:
        """The tenant's postings at the index's current version, or None (FTS5 answers) while they are not
        worth reading or not read yet. A write that only added chunks (an ingest) is applied to the postings in
        memory at once, on a thread of its own (`fts5_bm25.extended`: milliseconds for a batch of documents).
        Otherwise (a delete, a re-ingest, or postings never read) the whole index has to be read again, and
        that waits: a new version is first served by FTS5, and the postings are read again once FTS5 has spent
        on that version what the last reading took (never more than twice the cheaper choice, as in ski rental).
        An index that changes between every two queries is never read; a stable one is read once. The reading
        runs on a thread of its own, never in a request: at 10,000 SciFact abstracts (18,000 chunks) it took
        7.5 s, which the one query that happened to trigger it used to wait for. Measured after 1,500 more
        abstracts went into a 10,000-abstract tenant, FTS5 answered the next 30 s of queries at 24 ms each
        (1 ms from the postings) before the ski rental let the whole index be read again."""
        version = _index_version(db)
        lexicon = self._lexicon(tenant_id)
        current = lexicon.postings
        if current is not None and current.version == version:
            return current
        first_sight = lexicon.seen_version != version
        if first_sight:
            lexicon.seen_version, lexicon.fts5_seconds = version, 0.0
        appended = current is not None and _only_appended(db, current)
        if not appended and (first_sight or lexicon.fts5_seconds < lexicon.read_seconds):
            return None  # not worth reading yet
        if not lexicon.reading.acquire(blocking=False):
            return None  # being read now
        lexicon.reader = threading.Thread(target=self._read_postings, args=(tenant_id, lexicon), name="raas-postings", daemon=True)
        lexicon.reader.start()
        return None

    def _read_postings(self, tenant_id: str, lexicon: _Lexicon) -> None:
        """Brings the postings to the index's current version in one snapshot: the rows added since, when that is
        all that changed, else the whole index; releases `lexicon.reading`."""
        try:
            if not self._path(tenant_id).exists():  # dropped meanwhile: never re-create it
                return
            started = time.perf_counter()
            with self._connect(tenant_id) as db:
                db.execute("BEGIN")  # the version, the change log and the rows from one snapshot
                version = _index_version(db)
                seq = int(db.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0])
                current = lexicon.postings
                if current is not None and _only_appended(db, current):
                    lexicon.postings = extended(current, _rows_after(db, current), _WEIGHTS, version, seq)
                    return
                postings = read_postings(db, "chunks_fts", _WEIGHTS, version, seq)
            lexicon.read_seconds = time.perf_counter() - started
            lexicon.postings = postings
        except Exception:  # FTS5 keeps answering; the next stable version tries again
            logger.exception("reading the BM25 postings failed", extra={"tenant_id": tenant_id})
        finally:
            lexicon.reading.release()

    def warm(self, tenant_id: str) -> bool:
        """Reads, on the calling thread, what a tenant's first queries would otherwise wait for or compete with: its
        vectors and its BM25 postings. `raas local` calls it for its larger indexes from a thread at start, as it
        loads the embedder; whether there was an index to read."""
        if not self._path(tenant_id).exists():
            return False
        self._matrix(tenant_id)
        lexicon = self._lexicon(tenant_id)
        if lexicon.reading.acquire(blocking=False):  # else a query's reading is under way
            self._read_postings(tenant_id, lexicon)
        return True

    def wait_for_postings(self, tenant_id: str, timeout: float | None = None) -> None:
        """Returns once no reading of the tenant's postings is under way (tests, shutdown)."""
        reader = self._lexicon(tenant_id).reader
        if reader is not None:
            reader.join(timeout)

    def semantic(self, tenant_id: str, vector: list[float], k: int, conditions: list[Condition]) -> list[Hit]:
        if not self._path(tenant_id).exists():
            return []
        matrix = self._matrix(tenant_id)
        if not matrix.ids:
            return []
        query = np.asarray(vector, dtype=np.float32)
        query /= float(np.linalg.norm(query)) or 1.0
        scores = matrix.vectors @ query
        if conditions:
            allowed = np.array([matches(json.loads(row[4]), conditions) for row in matrix.rows], dtype=bool)
            scores = np.where(allowed, scores, -np.inf)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        ranked = sorted(top, key=lambda i: (-scores[i], matrix.ids[i]))
        hits = []
        for i in ranked:
            if not np.isfinite(scores[i]):
                continue
            cid, doc, title, position, metadata = matrix.rows[i]
            hits.append(Hit(cid, doc, title, matrix.texts[i], position, float(scores[i]), json.loads(metadata)))
        return hits

    def _matrix(self, tenant_id: str) -> _Matrix:
        """The tenant's vectors in memory at the index's current version. After a write only the rows the
        change log names are read (a document's chunks, not the whole index: 30 ms at 10,000 chunks for
        every query that follows a write otherwise); a reader the log no longer covers reads everything."""
        with self._connect(tenant_id) as db:
            db.execute("BEGIN")  # one snapshot: the version, the log and the rows agree
            version = _index_version(db)
            cached = self._matrices.get(tenant_id)
            if cached and cached.version == version:
                return cached
            seq, oldest = db.execute("SELECT coalesce(max(seq), 0), coalesce(min(seq), 0) FROM changes").fetchone()
            touched: set[int] | None = None
            if cached and oldest <= cached.seq + 1:
                touched = {r[0] for r in db.execute("SELECT chunk_rowid FROM changes WHERE seq > ?", (cached.seq,))}
            if cached and touched is not None and len(touched) <= _INCREMENTAL_ROWS:
                marks = ",".join("?" * len(touched))
                fresh = db.execute(f"{_MATRIX_ROWS} WHERE rowid IN ({marks})", list(touched)).fetchall() if touched else []
                matrix = cached.changed(version, seq, touched, fresh, self.dimension)
            else:
                matrix = _Matrix.of(version, seq, db.execute(f"{_MATRIX_ROWS} ORDER BY rowid").fetchall(), self.dimension)
        self._matrices[tenant_id] = matrix
        return matrix

    def export_chunks(self, tenant_id: str) -> list[Chunk]:
        """Every chunk of the tenant, in insertion order (for tenant export and benchmarks)."""
        if not self._path(tenant_id).exists():
            return []
        with self._connect(tenant_id) as db:
            rows = db.execute("SELECT chunk_id, document_id, title, text, position, metadata FROM chunks ORDER BY rowid").fetchall()
        return [Chunk(chunk_id=r[0], document_id=r[1], title=r[2], text=r[3], position=r[4], metadata=json.loads(r[5])) for r in rows]

    def document_chunks(self, tenant_id: str, document_id: str, after_position: int | None, limit: int) -> list[Chunk]:
        """Up to `limit` of the document's chunks above `after_position`, in position order (the console's chunk view)."""
        if not self._path(tenant_id).exists():
            return []
        with self._connect(tenant_id) as db:
            rows = db.execute(
                "SELECT chunk_id, document_id, title, text, position, metadata FROM chunks "
                "WHERE document_id = ? AND position > ? ORDER BY position, chunk_id LIMIT ?",
                (document_id, -1 if after_position is None else after_position, limit),
            ).fetchall()
        return [Chunk(chunk_id=r[0], document_id=r[1], title=r[2], text=r[3], position=r[4], metadata=json.loads(r[5])) for r in rows]

    def document_ids(self, tenant_id: str) -> set[str]:
        """The ids of the documents the tenant's index holds chunks of (reconciled with the registry at start)."""
        if not self._path(tenant_id).exists():
            return set()
        with self._connect(tenant_id) as db:
            return {row[0] for row in db.execute("SELECT DISTINCT document_id FROM chunks")}

    def count(self, tenant_id: str) -> int:
        if not self._path(tenant_id).exists():
            return 0
        with self._connect(tenant_id) as db:
            return int(db.execute("SELECT count(*) FROM chunks").fetchone()[0])


def _conditions_json(conditions: list[Condition]) -> str:
    return json.dumps([[c.field, c.op, c.value] for c in conditions])


def _sql_matches(metadata_json: str, conditions_json: str) -> int:
    conditions = [Condition(field, op, value) for field, op, value in json.loads(conditions_json)]
    return int(matches(json.loads(metadata_json), conditions))


__all__ = ["EmbeddedSearch", "chunk_id", "fts_query"]
