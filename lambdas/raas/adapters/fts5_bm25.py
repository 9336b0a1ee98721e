"""FTS5's own BM25 scores, computed in memory from FTS5's own postings.

FTS5 runs its `bm25()` once for every row a query matches, each call reading that row's size from
the `%_docsize` table. With common words that is most of an index: 10 ms a query at 10,000 chunks,
a third of a local query's platform time. This module reads the index's postings once (through the
`fts5vocab` instance table, so the terms are exactly the ones FTS5's tokenizer produced) and scores
a query with numpy, using the formula, the constants and the order of floating-point operations of
`fts5Bm25Function` in SQLite's `ext/fts5/fts5_aux.c`:

    idf(phrase) = log((N - hits + 0.5) / (hits + 0.5)), or 1e-6 where that is not positive
    score(row)  = sum over the query's phrases, in order, of
                  idf * (freq * (k1 + 1)) / (freq + k1 * (1 - b + b * D / avgdl))

with k1 = 1.2, b = 0.75, freq the phrase's occurrences in the row weighted by column, D the row's
tokens in every column and avgdl the index's mean (https://www.sqlite.org/fts5.html#the_bm25_function).
Every operation is a double-precision operation in the same order as FTS5's, so the scores are the
very numbers FTS5 answers, and rankings with ties come out the same (tests compare them exactly).

Only single-token phrases are scored here (a query term the tokenizer splits, such as `foo_bar`, is a
phrase query on adjacent tokens: FTS5 answers those).
"""

from __future__ import annotations

import math
import sqlite3
import threading
from dataclasses import dataclass, field

import numpy as np

K1 = 1.2
B = 0.75
TOKENIZER = "porter unicode61"  # the index's tokenize= option: query terms go through the same one


@dataclass(frozen=True)
class Postings:
    """One version of a tenant's index: per term, the rows holding it and their weighted frequencies."""

    version: int
    rowids: np.ndarray  # int64, per row of the index in rowid order
    id_rank: np.ndarray  # each row's place in chunk id order (ties are broken by chunk id)
    norms: np.ndarray  # k1 * (1 - b + b * D / avgdl), per row
    terms: dict[str, tuple[np.ndarray, np.ndarray]]  # term -> (row positions, weighted frequency)
    chunk_ids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))  # per row, for `extended`
    lengths: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # D per row, for `extended`
    seq: int = 0  # the index's last change-log entry these postings include (`extended` reads the rows after it)

    @property
    def size(self) -> int:
        return len(self.rowids)

    def top(self, phrases: list[str], k: int) -> list[tuple[int, float]]:
        """The k best (rowid, score) for an OR of single-token phrases, best first, ties by chunk id."""
        if not self.size:
            return []
        scores = np.zeros(self.size)
        matched = np.zeros(self.size, dtype=bool)
        for token in phrases:  # in the query's order, as FTS5 sums them; a repeated token counts again
            positions, freq = self.terms.get(token, _NOTHING)
            if not len(positions):
                continue
            hits = len(positions)
            idf = math.log((self.size - hits + 0.5) / (hits + 0.5))
            if idf <= 0.0:
                idf = 1e-6
            scores[positions] += idf * ((freq * (K1 + 1.0)) / (freq + self.norms[positions]))
            matched[positions] = True
        candidates = np.flatnonzero(matched)
        if len(candidates) > k:  # those scoring at least the k-th best: every row tied with it stays
            kth = np.partition(scores[candidates], len(candidates) - k)[len(candidates) - k]
            candidates = candidates[scores[candidates] >= kth]
        order = candidates[np.lexsort((self.id_rank[candidates], -scores[candidates]))][:k]
        return [(int(self.rowids[i]), float(scores[i])) for i in order]


_NOTHING = (np.zeros(0, dtype=np.int64), np.zeros(0))


PARSE_BATCH_TERMS = 200  # a batch of terms' codes is parsed in one call of a few milliseconds at most


def _parse_codes(per_term: list[str]) -> np.ndarray:
    """Every term's comma-separated codes, in order, as one array. Parsed a batch of terms at a time: the postings
    are read on a thread beside queries, and a single `split` and `np.array` over SciFact's 2.6 million codes held
    the interpreter lock for 0.4 s (a query's embedding waited for it between every two of the model's operators).
    `np.fromstring` in text mode (`sep`) parses in C without a Python string per code."""
    parts = [
        np.fromstring(",".join(per_term[start : start + PARSE_BATCH_TERMS]), dtype=np.int64, sep=",")
        for start in range(0, len(per_term), PARSE_BATCH_TERMS)
    ]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def read_postings(db: sqlite3.Connection, table: str, weights: dict[str, float], version: int, seq: int = 0) -> Postings:
    """The postings of FTS5 table `table` (external content `chunks`), column weights as given to bm25().

    The instance table lists every token of the index ordered by term, then row, then column, so SQLite
    groups it by term as it goes (grouping by term and row made it sort 1.3 million instances in a temporary
    B-tree: 3.2 s at SciFact's 9,257 chunks). Each term's instances come as one string of `row * columns +
    column` codes; the strings are parsed in batches (`_parse_codes`) and the runs of equal codes are counted with
    numpy (5.2 s -> about 1.3 s in all)."""
    db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{table}_instances USING fts5vocab(main, {table}, instance)")
    documents = db.execute("SELECT rowid, chunk_id FROM chunks ORDER BY rowid").fetchall()
    rowids = np.fromiter((r[0] for r in documents), dtype=np.int64, count=len(documents))
    chunk_ids = np.array([r[1] for r in documents], dtype=object)
    terms, lengths = _count_instances(db, f"temp.{table}_instances", weights, rowids)
    return _postings(version, seq, rowids, chunk_ids, lengths, terms)


def _postings(
    version: int, seq: int, rowids: np.ndarray, chunk_ids: np.ndarray, lengths: np.ndarray, terms: dict[str, tuple[np.ndarray, np.ndarray]]
) -> Postings:
    """The per-row numbers FTS5's bm25() derives from the whole index: each row's rank in chunk id order, and its
    length norm against the index's mean length (which every added row changes)."""
    id_rank = np.empty(len(rowids), dtype=np.int64)
    id_rank[np.argsort(chunk_ids)] = np.arange(len(rowids))
    average = float(lengths.sum()) / len(rowids) if len(rowids) else 1.0
    norms = K1 * ((1 - B) + (B * lengths.astype(np.float64)) / average)
    return Postings(version, rowids, id_rank, norms, terms, chunk_ids, lengths, seq)


def _count_instances(
    db: sqlite3.Connection, instances: str, weights: dict[str, float], rowids: np.ndarray
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """Per term, the positions in `rowids` of the rows holding it and its weighted frequency in each, and each row's
    length in tokens, from an fts5vocab instance table whose rows are exactly `rowids`."""
    columns = sorted(weights)
    column_code = "CASE col " + " ".join(f"WHEN '{c}' THEN {i}" for i, c in enumerate(columns)) + " END"
    by_term = db.execute(
        f"SELECT term, count(*), group_concat(doc * {len(columns)} + {column_code}, ',') FROM {instances} GROUP BY term"  # noqa: S608 - names are ours
    ).fetchall()
    lengths = np.zeros(len(rowids), dtype=np.int64)
    terms: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if by_term:
        codes = _parse_codes([r[2] for r in by_term])  # term by term, each ordered by row, column
        term_of = np.repeat(np.arange(len(by_term)), [r[1] for r in by_term])
        # runs of one (term, row, column): where the term or the code changes
        starts = np.flatnonzero(np.concatenate(([True], (codes[1:] != codes[:-1]) | (term_of[1:] != term_of[:-1]))))
        run_counts = np.diff(np.append(starts, len(codes)))
        run_term, run_row, run_column = term_of[starts], codes[starts] // len(columns), codes[starts] % len(columns)
        # one entry per (term, row): per column occurrences, added up with the weights in column order
        pair_starts = np.flatnonzero(np.concatenate(([True], (run_row[1:] != run_row[:-1]) | (run_term[1:] != run_term[:-1]))))
        pair_index = np.repeat(np.arange(len(pair_starts)), np.diff(np.append(pair_starts, len(run_row))))
        per_column = np.zeros((len(pair_starts), len(columns)))
        per_column[pair_index, run_column] = run_counts
        freq = np.zeros(len(pair_starts))
        for i, column in enumerate(columns):  # exact: small counts times 0.5 or 1.0, in FTS5's order
            freq += weights[column] * per_column[:, i]
        positions = np.searchsorted(rowids, run_row[pair_starts])
        np.add.at(lengths, positions, per_column.sum(axis=1).astype(np.int64))
        pair_term = run_term[pair_starts]
        bounds = np.searchsorted(pair_term, np.arange(len(by_term) + 1))
        for index, (term, _count, _codes) in enumerate(by_term):
            terms[term] = (positions[bounds[index] : bounds[index + 1]], freq[bounds[index] : bounds[index + 1]])
    return terms, lengths


def extended(postings: Postings, rows: list[tuple[int, str, str, str]], weights: dict[str, float], version: int, seq: int) -> Postings:
    """`postings` with rows appended (rowid, chunk_id, title, text), every rowid past the last one `postings` holds:
    what a write that only added chunks changed, without reading the whole index again (1.4 s at 20,000 SciFact
    chunks; the rows of a batch of documents take milliseconds). The rows are tokenized by an FTS5 table of the
    same columns and tokenizer in memory, and counted by the very code that counts the index's own instances, so
    the numbers are the ones a full reading would give (tests compare them exactly)."""
    if rows and postings.size and rows[0][0] <= postings.rowids[-1]:
        raise ValueError("only rows after the last one can be appended")
    if set(weights) != {"title", "text"}:
        raise ValueError("the rows carry a title and a text")
    scratch = sqlite3.connect(":memory:")
    try:
        scratch.execute(f"CREATE VIRTUAL TABLE added USING fts5(title, text, tokenize='{TOKENIZER}')")
        scratch.execute("CREATE VIRTUAL TABLE added_instances USING fts5vocab(added, instance)")
        scratch.executemany("INSERT INTO added(rowid, title, text) VALUES (?, ?, ?)", [(r[0], r[2], r[3]) for r in rows])
        rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        added, lengths = _count_instances(scratch, "added_instances", weights, rowids)
    finally:
        scratch.close()
    offset = postings.size
    terms = dict(postings.terms)
    for term, (positions, freq) in added.items():
        had = terms.get(term)
        terms[term] = (np.concatenate((had[0], positions + offset)), np.concatenate((had[1], freq))) if had else (positions + offset, freq)
    return _postings(
        version,
        seq,
        np.concatenate((postings.rowids, rowids)),
        np.concatenate((postings.chunk_ids, np.array([r[1] for r in rows], dtype=object))),
        np.concatenate((postings.lengths, lengths)),
        terms,
    )


class QueryTokens:
    """A query term's tokens as FTS5 makes them (same tokenizer, in a small in-memory FTS5 table)."""

    def __init__(self, limit: int = 50_000):
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.executescript(
            f"CREATE VIRTUAL TABLE terms USING fts5(x, tokenize='{TOKENIZER}');"
            "CREATE VIRTUAL TABLE terms_instances USING fts5vocab(terms, instance);"
        )
        self._lock = threading.Lock()
        self._known: dict[str, tuple[str, ...]] = {}
        self._limit = limit

    def of(self, words: list[str]) -> list[tuple[str, ...]]:
        with self._lock:
            unknown = list(dict.fromkeys(w for w in words if w not in self._known))
            if unknown:
                self._db.execute("DELETE FROM terms")
                self._db.executemany("INSERT INTO terms(rowid, x) VALUES (?, ?)", list(enumerate(unknown)))
                found: dict[int, list[str]] = {i: [] for i in range(len(unknown))}
                for row, token in self._db.execute("SELECT doc, term FROM terms_instances ORDER BY doc, offset"):
                    found[row].append(token)
                if len(self._known) + len(unknown) > self._limit:
                    self._known.clear()
                self._known.update({word: tuple(found[i]) for i, word in enumerate(unknown)})
            return [self._known[w] for w in words]
