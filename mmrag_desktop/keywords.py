"""Keyword search over what a person would type about a photo — its file and folder names,
its camera and the month and year it was taken — with SQLite FTS5 and BM25, and its fusion
with the embedding search by reciprocal-rank fusion.

The keyword index is a derived cache beside the library (``keywords.db``), like the HNSW
index: brought up to date from the library's change sequence before each search, rebuilt
whole when that history is gone, and safe to delete.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .store import Store

FIELDS = ("name", "folder", "camera", "date")
RRF_K = 60
"""Reciprocal-rank fusion's constant (Cormack, Clarke & Büttcher, 2009, "Reciprocal rank
fusion outperforms Condorcet and individual rank learning methods", SIGIR): a photo's fused
score is the sum over lists of 1 / (RRF_K + rank)."""

_WORD = re.compile(r"\w+", re.UNICODE)
_PHRASE = re.compile(r'"([^"]+)"')


@dataclass
class KeywordHit:
    """A photo the keyword search found: its row id, BM25 rank (1 is best), and why — the
    field that matched and a snippet with the match in [brackets]."""

    id: int
    rank: int
    field: str
    snippet: str


def document(path: str, camera_make: str | None, camera_model: str | None,
             taken_at: str | None, mtime_ns: int | None) -> dict[str, str]:
    """The words of one photo, by field; the date is the month's name and the year (taken,
    else the file's modification time)."""
    when = None
    if taken_at:
        try:
            when = datetime.fromisoformat(taken_at)
        except ValueError:
            when = None
    if when is None and mtime_ns:
        when = datetime.fromtimestamp(mtime_ns / 1e9)
    return {
        "name": os.path.splitext(os.path.basename(path))[0],
        "folder": os.path.dirname(path),
        "camera": " ".join(filter(None, [camera_make, camera_model])),
        "date": when.strftime("%B %Y") if when else "",
    }


def match_expression(query: str) -> str | None:
    """An FTS5 query for what a person typed: quoted phrases stay phrases, other words are
    alternatives (BM25 ranks photos matching more of them first). None when nothing is
    searchable (no word characters)."""
    phrases = [" ".join(_WORD.findall(p)) for p in _PHRASE.findall(query)]
    words = _WORD.findall(_PHRASE.sub(" ", query))
    parts = [f'"{p}"' for p in phrases if p] + [f'"{w}"' for w in words]
    return " OR ".join(parts) or None


class KeywordIndex:
    """The FTS5 index at *path*, for the library in *store*."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS docs USING fts5("
                         f"{', '.join(FIELDS)}, tokenize='unicode61 remove_diacritics 2')")
        self._db.execute("CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value)")
        self._db.commit()

    def _applied(self) -> int:
        row = self._db.execute("SELECT value FROM state WHERE key = 'seq'").fetchone()
        return int(row[0]) if row else -1

    def catch_up(self, store: Store) -> None:
        """Apply what the library changed since this index last looked."""
        with self._lock:
            applied = self._applied()
            with store.snapshot():
                changes = store.changes_since(max(applied, 0))
                if changes.seq == applied:
                    return
                if applied < 0 or changes.full:
                    self._db.execute("DELETE FROM docs")
                    rows = store.keyword_rows(after_seq=0)
                else:
                    rows = store.keyword_rows(after_seq=applied)
                    gone = changes.deleted + [row[0] for row in rows]
                    self._db.executemany("DELETE FROM docs WHERE rowid = ?",
                                         [(i,) for i in gone])
            self._db.executemany(
                f"INSERT INTO docs(rowid, {', '.join(FIELDS)}) VALUES (?, ?, ?, ?, ?)",
                [(row[0], *document(*row[1:-1]).values()) for row in rows if row[-1]])
            self._db.execute("INSERT OR REPLACE INTO state VALUES ('seq', ?)", [changes.seq])
            self._db.commit()

    def search(self, query: str, k: int) -> list[KeywordHit]:
        """The best *k* photos (-1: all that match) for *query* by BM25 (FTS5's
        ``bm25()``), best first."""
        expression = match_expression(query)
        if expression is None:
            return []
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT rowid, " + ", ".join(
                        f"highlight(docs, {i}, '[', ']')" for i in range(len(FIELDS)))
                    + " FROM docs WHERE docs MATCH ? ORDER BY bm25(docs) LIMIT ?",
                    [expression, k]).fetchall()
            except sqlite3.OperationalError:  # a query FTS5 cannot parse finds nothing
                return []
        hits = []
        for rank, (row_id, *marked) in enumerate(rows, 1):
            field, snippet = next(((f, m) for f, m in zip(FIELDS, marked) if "[" in m),
                                  (FIELDS[0], marked[0]))
            hits.append(KeywordHit(row_id, rank, field, snippet))
        return hits

    def __len__(self) -> int:
        """Photos in the index."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM docs").fetchone()[0]

    def close(self) -> None:
        self._db.close()


def fuse(rankings: list[list[int]]) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion (:data:`RRF_K`) of ranked id lists, best first: (id, fused
    score). Ties keep the order of first appearance."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, row_id in enumerate(ranking, 1):
            scores[row_id] = scores.get(row_id, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(scores.items(), key=lambda item: -item[1])
