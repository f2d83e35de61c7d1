"""Keyword search over what a person would type about a photo — its file and folder names,
its camera, the month and year it was taken, the text in it, the place's names, its caption
and tags (what the understanding pass learned, :mod:`.understanding.passes`) and what was extracted
from it (:mod:`.understanding.extraction`) — with SQLite FTS5 and BM25, and its
fusion with the embedding search by reciprocal-rank fusion.

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

from ..core.text import elide
from ..store.database import Store

FIELDS = ("name", "folder", "camera", "date", "text", "place", "caption", "extracted",
          "keywords")
LAYOUT = 4  # what the fields hold; an index of another layout is rebuilt
UNDERSTOOD = ("text", "place", "caption", "extracted", "keywords")
"""The fields filled from the understanding table: each by the kinds named ``FIELD`` or
``FIELD:…`` (the extractions, one kind per schema); ``keywords`` are the XMP keywords and
description other apps wrote (:mod:`.media.xmp`)."""
SNIPPET_TOKENS = 12  # the most words of a field a match's snippet shows
FUZZY_SNIPPET_CHARS = 60
FUZZY_MIN_LETTERS = 5  # shorter words ("what", "the") share trigrams with too much
MIN_SHARED_TRIGRAMS = 0.6
"""A fuzzy text hit holds at least this fraction of the trigrams of one of the query's
words ("Hardwate" holds 4 of the 6 of "hardware")."""
MIN_RELATIVE_BM25 = 0.5
"""Keyword hits scoring below this fraction of the best hit's BM25 are left out: a photo
that shares only a common word ("of") or a few trigrams with the query is no match, and in
hybrid search it would lift whatever the embeddings rank first above the photo that
matches every word."""
STOP_WORDS = frozenset("""a about above after again against all am an and any are as at be because
been before being below between both but by can could did do does doing down during each few
for from further had has have having he her here hers herself him himself his how i if in into
is it its itself just me more most my myself no nor not now of off on once only or other our
ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yourself yourselves
show shows find photo photos picture pictures image images say says said tell see saw seen
look looks take took taken""".split())
"""Words that never match alone: English function words (the NLTK list's core) and the
words people use to ask for photos at all ("show me photos of …", "what did the receipt
say?")."""
MIN_WORD = 3
"""Shorter tokens never match: "A", "I", "of", and OCR's stray letters."""
MIN_COVERAGE = 1 / 3
"""A keyword hit is fused with the embedding search only when the photo holds at least this
share of the query's words (those left once :data:`STOP_WORDS` and short tokens are out),
exactly or by trigrams. A third, not a half: OCR that read "Golden Dragy" or "Elm St" still
finds "Golden Dragon Takeaway" and "Elm Street Market" (with a half, rank-1 of the 40 phrases
of ``mmrag bench --text`` fell from 97.5 % to 92.5 % in hybrid mode)."""
RRF_K = 60
"""Reciprocal-rank fusion's constant (Cormack, Clarke & Büttcher, 2009, "Reciprocal rank
fusion outperforms Condorcet and individual rank learning methods", SIGIR): a photo's fused
score is the sum over lists of 1 / (RRF_K + rank)."""

_WORD = re.compile(r"\w+", re.UNICODE)
_PHRASE = re.compile(r'"([^"]+)"')
_MARKED = re.compile(r"\[([^\]]*)\]")


@dataclass
class KeywordHit:
    """A photo the keyword search found: its row id, BM25 rank (1 is best), and why — the
    field that matched and a snippet with the match in [brackets], on one line."""

    id: int
    rank: int
    field: str
    snippet: str
    words: frozenset[str] = frozenset()  # the query's words it holds (see :func:`coverage`)


def document(path: str, root: str, camera_make: str | None, camera_model: str | None,
             taken_at: str | None, mtime_ns: int | None,
             understood: dict[str, str]) -> dict[str, str]:
    """The words of one photo, by field (:data:`FIELDS`): the folder is the library
    folder's name and the path below it (what is above, ``/home/alice``, every photo
    shares: it would match everything); the date is the month's name and the year (taken,
    else the file's modification time); *understood* is {kind: searchable text} from the
    understanding pass and extractions."""
    below = os.path.relpath(os.path.dirname(path), root)
    by_field: dict[str, list[str]] = {name: [] for name in UNDERSTOOD}
    for kind, text in understood.items():
        field = kind.partition(":")[0]
        if field in by_field and text:
            by_field[field].append(text)
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
        "folder": " / ".join([os.path.basename(root)] + (
            [] if below == os.curdir else [below])),
        "camera": " ".join(filter(None, [camera_make, camera_model])),
        "date": when.strftime("%B %Y") if when else "",
    } | {name: "\n".join(texts) for name, texts in by_field.items()}


def content_words(text: str) -> list[str]:
    """The words of *text* that can match: :data:`MIN_WORD` characters or more and not
    in :data:`STOP_WORDS`, lower-case, each once."""
    words = [w.lower() for w in _WORD.findall(text)]
    return list(dict.fromkeys(w for w in words if len(w) >= MIN_WORD and w not in STOP_WORDS))


def match_expression(query: str) -> str | None:
    """An FTS5 query for what a person typed: quoted phrases stay phrases, other words are
    alternatives (BM25 ranks photos matching more of them first); stop words and short
    tokens are left out (:func:`content_words`). None when nothing is searchable."""
    phrases = [" ".join(_WORD.findall(p)) for p in _PHRASE.findall(query)]
    words = content_words(_PHRASE.sub(" ", query))
    parts = [f'"{p}"' for p in phrases if content_words(p)] + [f'"{w}"' for w in words]
    return " OR ".join(parts) or None


def coverage(query: str, matched: set[str]) -> float:
    """The share of *query*'s words (:func:`content_words`, quoted phrases' words too) among
    *matched* (lower-case words a hit holds); 1 for a query without such words."""
    words = content_words(query)
    return sum(w in matched for w in words) / len(words) if words else 1.0


def _strong(rows: list[tuple]) -> list[tuple]:
    """Rows ``(rowid, bm25, *rest)`` best first, without those scoring below
    :data:`MIN_RELATIVE_BM25` of the best, and without the score."""
    if not rows:
        return []
    best = rows[0][1]  # FTS5's bm25() is negative: lower is better
    return [(row_id, *rest) for row_id, score, *rest in rows
            if score <= MIN_RELATIVE_BM25 * best]


def trigrams(text: str) -> set[str]:
    """The lower-case trigrams of *text*'s words (of three or more letters)."""
    return {word[i:i + 3] for word in _WORD.findall(text.lower())
            for i in range(len(word) - 2)}


class KeywordIndex:
    """The FTS5 index at *path* (see :meth:`catch_up` for whose library)."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value)")
        layout = f"{LAYOUT} " + " ".join(FIELDS)
        row = self._db.execute("SELECT value FROM state WHERE key = 'fields'").fetchone()
        if row is None or row[0] != layout:  # made by another version: rebuild
            self._db.execute("DROP TABLE IF EXISTS docs")
            self._db.execute("DROP TABLE IF EXISTS grams")
            self._db.execute("DELETE FROM state")
        self._db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS docs USING fts5("
                         f"{', '.join(FIELDS)}, tokenize='unicode61 remove_diacritics 2')")
        # The recognised text again, by trigram: OCR misreads and run-together words
        # ("Hargwe stoe", "SummitTrail") still share most trigrams with the words typed.
        self._db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS grams USING fts5("
                         "text, tokenize='trigram')")
        self._db.execute("INSERT OR REPLACE INTO state VALUES ('fields', ?)", [layout])
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
                    self._db.execute("DELETE FROM grams")
                    rows = store.keyword_rows(after_seq=0)
                else:
                    rows = store.keyword_rows(after_seq=applied)
                    gone = [(i,) for i in changes.deleted + [row[0] for row in rows]]
                    self._db.executemany("DELETE FROM docs WHERE rowid = ?", gone)
                    self._db.executemany("DELETE FROM grams WHERE rowid = ?", gone)
            documents = [(row[0], document(*row[1:-1])) for row in rows if row[-1]]
            self._db.executemany(
                f"INSERT INTO docs(rowid, {', '.join(FIELDS)}) "
                f"VALUES (?, {', '.join('?' * len(FIELDS))})",
                [(row_id, *fields.values()) for row_id, fields in documents])
            self._db.executemany("INSERT INTO grams(rowid, text) VALUES (?, ?)",
                                 [(row_id, fields["text"]) for row_id, fields in documents
                                  if fields["text"]])
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
                    "SELECT rowid, bm25(docs), " + ", ".join(
                        f"snippet(docs, {i}, '[', ']', '…', {SNIPPET_TOKENS})"
                        for i in range(len(FIELDS)))
                    + " FROM docs WHERE docs MATCH ? ORDER BY bm25(docs) LIMIT ?",
                    [expression, k]).fetchall()
            except sqlite3.OperationalError:  # a query FTS5 cannot parse finds nothing
                return []
        hits = []
        for rank, (row_id, *marked) in enumerate(_strong(rows), 1):
            found = frozenset(w.lower() for m in marked for part in _MARKED.findall(m)
                              for w in _WORD.findall(part))
            field, snippet = next(((f, m) for f, m in zip(FIELDS, marked) if "[" in m),
                                  (FIELDS[0], marked[0]))
            hits.append(KeywordHit(row_id, rank, field, " ".join(snippet.split()), found))
        return hits

    def search_text_fuzzy(self, query: str, k: int) -> list[KeywordHit]:
        """The best *k* photos (-1: all that match) whose recognised text shares trigrams
        with *query*'s words, by BM25 over trigrams (n-gram matching of OCR-degraded text:
        Harding, Croft & Weir, 1997, "Probabilistic retrieval of OCR degraded text using
        N-grams", ECDL) among those holding :data:`MIN_SHARED_TRIGRAMS` of the trigrams of
        a query word of :data:`FUZZY_MIN_LETTERS` or more; the snippet is the start of the
        text. None for quoted queries: quotes ask for the exact phrase."""
        typed = [w for w in content_words(query) if len(w) >= FUZZY_MIN_LETTERS]
        words = [trigrams(w) for w in typed]
        if not words or '"' in query:
            return []
        expression = " OR ".join(f'"{g}"' for g in set().union(*words))
        with self._lock:
            rows = self._db.execute(
                "SELECT rowid, bm25(grams), text FROM grams WHERE grams MATCH ? "
                "ORDER BY bm25(grams) LIMIT ?", [expression, k]).fetchall()
        similar = []
        for row_id, score, text in rows:
            held = trigrams(text)
            near = frozenset(w for w, grams in zip(typed, words)
                             if len(grams & held) >= MIN_SHARED_TRIGRAMS * len(grams))
            if near:
                similar.append((row_id, score, text, near))
        return [KeywordHit(row_id, rank, "text", elide(" ".join(text.split()),
                                                       FUZZY_SNIPPET_CHARS), near)
                for rank, (row_id, text, near) in enumerate(_strong(similar), 1)]

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
