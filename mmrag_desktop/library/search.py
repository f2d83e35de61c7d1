"""Finding photos: the query's top-k by embedding (image, caption and keyframe vectors),
keywords (BM25) and personal concepts, fused by reciprocal-rank fusion; browsing by filters;
photos by id with what is known of them."""

from __future__ import annotations

import dataclasses
import math
import os
import sqlite3
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from ..clip.embedder import query_vector
from ..domain.concepts import mentioned
from ..domain.folders import OFFLINE
from ..domain.query import Filters, QueryError, Result, Term
from ..domain.query_parser import Understood, Vocabulary, understand
from ..domain.timeline import Timeline
from ..index.captions import KIND as CAPTION_KIND
from ..index.keywords import MIN_COVERAGE, coverage, fuse
from ..index.vectors import EXACT_UP_TO
from ..understanding.passes import summary

if TYPE_CHECKING:  # the model and torch load on first use (a fast GUI launch)
    from ..index.vectors import VectorIndex
    from .facade import Library


EXACT_SEARCH_SCALE = 12.0
"""A filter that leaves at most this × √(library size) × (k / 10)^0.3 photos is searched
exactly (their vectors mapped from the saved index file, :meth:`Search.exact`, one matrix
product), more by walking the HNSW graph past the photos it refuses. The walk visits about
max(``ef``, k) × size / allowed nodes, so the two cross near √(``ef`` × size), later for a
larger k. Measured end to end at 1,000,000 photos (synthetic 512-d, 2-core EPYC, k = 10,
p50): a week (1,852 photos) 7.2 ms, a month (8,368) 14.6 ms exact (the first search of a
month 71 ms, while the file's pages are mapped in; from SQLite 37 ms) against a walk of 27;
two months (16,880) 19.8 ms by walking (exact: ~25). At 100,000 photos (rows from SQLite
then, 5 µs each), k = 100, exact vs walk: 2,000: 19 vs 41 ms; 4,000: 31 vs 20 ms; k = 500 (the
window's): 4,000: 30 vs 49 ms; 6,000: 47 vs 45 ms."""


def searched_exactly(allowed: int, size: int, k: int) -> bool:
    """Whether a filter that lets *allowed* of *size* embedded photos through is searched
    exactly for the top *k* rather than in the HNSW graph (:data:`EXACT_SEARCH_SCALE`)."""
    return allowed <= EXACT_SEARCH_SCALE * math.sqrt(size) * (max(k, 10) / 10) ** 0.3


POST_FILTER_CANDIDATES = 300
"""A filtered search for up to :data:`POST_FILTER_MAX_K` results first asks the graph,
unfiltered, for this many candidates and keeps those the filter lets through (post-filtering):
when k of them pass, they are the filter's top-k, since every photo left out scores below all
candidates. A broad filter (a year of a ten-year library) is so answered without reading its
ids: 1,000,000 photos, a year: ~5 ms (300 candidates from the graph ~4 ms, their SQL check
0.8 ms) instead of ~33 (100,000 ids read, 26 ms, then a filtered walk). A narrow filter lets
fewer than k through and is searched as below, ~5 ms later (:func:`searched_exactly`)."""

POST_FILTER_MAX_K = 30


FEW_OFFLINE = 1000
"""Up to this many photos on offline roots are left out of an unfiltered search by asking
HNSW for that many more results and dropping them, keeping the search on the fast path."""


FRAME_CANDIDATES = 4
"""Keyframes asked of the frame index per result wanted: a video matches with several."""


BASELINE_SAMPLE = 512
"""Embeddings a query's baseline is measured on: the mean of 512 cosines has a standard error
of about σ/22 (σ ≈ 0.03 for CLIP), well below the gaps the relevance cut looks at."""


SEARCH_MODES = ("semantic", "keyword", "hybrid")


SEARCH_FIELDS = ("image", "caption", "both")


def _best(ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The *k* highest of *scores* with their *ids*, unordered."""
    if len(ids) <= k:
        return ids, scores
    keep = np.argpartition(-scores, k)[:k]
    return ids[keep], scores[keep]


class Search:
    """Search and browsing (``library.search``)."""

    def __init__(self, lib: Library):
        self.lib = lib
        self._vocabulary: tuple[tuple, Vocabulary] | None = None  # ((seq, albums), names known)
        self._sample: tuple[tuple, np.ndarray] | None = None  # ((seq, model), (n, d) vectors)

    def run(self, terms: list[Term], k: int = 20, min_score: float | None = None,
            filters: Filters | None = None, mode: str = "semantic",
            field: str = "both", understand: bool = True) -> list[Result]:
        """Top-k photos for a query of weighted texts and photos.

        *mode*: ``semantic`` ranks by the embeddings' cosine similarity; ``keyword`` by
        BM25 over the words of the query's texts (:mod:`.index.keywords`: file and folder names,
        camera, month and year, the text in the photo, its place's names, its caption and
        what was extracted from it); ``hybrid`` fuses both rankings by reciprocal-rank
        fusion (a query without words, a photo alone, is semantic).

        *field*: which of a photo's two vectors the semantic side searches: ``image`` (the
        pixels'), ``caption`` (its caption's, :mod:`.index.captions`; photos without one
        are not found), or ``both``, fused by reciprocal-rank fusion.

        Each text is understood first (:meth:`with_understanding`: "Anna at the beach last
        summer" is Anna, June to August, and "at the beach"), unless *understand* is False
        or the *mode* is ``keyword`` (its words, quotes and all, are searched as typed);
        a query that is only filters lists their photos, newest first (no score).

        A personal concept's name in a text (:mod:`.domain.concepts`: ``Rex at the beach``) ranks
        the library by the concept's probe; the rest of the text searches as above, and the
        rankings are fused by reciprocal-rank fusion (see :meth:`_concept_search`).

        Returns:
            Up to *k* results, best first, with metadata. ``score`` is the cosine similarity
            of the image vector (of the caption's with *field* ``caption``; None in
            keyword mode); a keyword match adds ``meta["matched"]``: the field and a snippet
            with the matched words in [brackets]; a caption match ``meta["caption_score"]``.

        Raises:
            QueryError: empty or unreadable query, an unknown mode or field, or keyword
                mode without words.
            ConceptError: a concept named in the query or the filters has no example
                with an embedding under the current model.
            ModelMissingError: no model weights.
            ModelMismatchError: the library holds another model's embeddings.
        """
        if mode not in SEARCH_MODES:
            raise QueryError(f"unknown search mode {mode!r}: {', '.join(SEARCH_MODES)}")
        filters = self.lib.concepts.resolved(filters)
        filters, terms = (self.with_understanding(terms, filters)
                          if understand and mode != "keyword" else (filters, terms))
        if not terms:
            return self._photos_of(filters, k)
        names = self.lib.store.concept_names()
        if names:
            found, terms = self._split_concepts(terms, names)
            if found:
                return self._concept_search(found, terms, k, min_score, filters, mode, field)
        if field not in SEARCH_FIELDS:
            raise QueryError(f"unknown search field {field!r}: {', '.join(SEARCH_FIELDS)}")
        words = " ".join(t.text for t in terms if t.text and t.weight > 0)
        if mode == "keyword":
            if not words:
                raise QueryError("a keyword search needs words")
            return self._keyword_search(words, k, filters)
        query = query_vector(self.lib.embedder, terms)
        if field == "caption":
            semantic = [r for r in self._caption_search(query, k, filters)
                        if min_score is None or r.score >= min_score]
        else:
            semantic = self.by_vector(query, k, min_score, filters)
            if field == "both":
                semantic = self._fused(query, semantic, self._caption_search(query, k, filters),
                                       k)
        results = semantic if mode == "semantic" or not words else \
            self._fused(query, semantic, self._keyword_search(words, k, filters), k)
        if field != "caption":  # the scores are image cosines: measure their baseline
            baseline = self.baseline(query)
            for result in results:
                result.baseline = baseline
        return results

    def baseline(self, query: np.ndarray) -> float | None:
        """The query's typical image cosine in this library: the mean of ``query · v`` over
        up to :data:`BASELINE_SAMPLE` of its embeddings, drawn at random once per library
        state; None for an empty library. *query*: (d,) float32, L2-normalised. Each model
        has its own range (CLIP's cosines of unrelated pairs sit near 0.2, SigLIP's near 0):
        relevance is measured from here (:func:`.domain.query.relevant`)."""
        state = (self.lib.store.seq(), self.lib.vector_index().model_id)
        if self._sample is None or self._sample[0] != state:
            ids = np.fromiter(self.lib.sync().ids(), dtype=np.int64)
            if len(ids) > BASELINE_SAMPLE:
                ids = np.sort(np.random.default_rng(0).choice(ids, BASELINE_SAMPLE, replace=False))
            self._sample = (state, self.vectors_of(ids))
        sample = self._sample[1]
        return float(np.mean(sample @ query)) if len(sample) else None

    def _fused(self, query: np.ndarray, first: list[Result], second: list[Result],
               k: int) -> list[Result]:
        """Two rankings fused by reciprocal-rank fusion; a photo in both keeps what each
        says of it (its image cosine, why it matched). Each ranking ranks the candidates
        of both (Cormack et al.'s fusion of full rankings): *second*'s photos below
        *first*'s top-k follow it by their exact image cosine, so a photo that matches
        every word of a query is not tied with one that only looks similar."""
        if not second:
            return first
        found = {r.id: r for r in first}
        for hit in second:
            if hit.id in found:
                found[hit.id].meta = hit.meta | found[hit.id].meta
        missing = {r.id: r for r in second if r.id not in found}
        below, scores = self.exact(query, set(missing), len(missing))
        for row_id, score in zip(below.tolist(), scores.tolist()):
            found[row_id] = Result(row_id, missing[row_id].path, score, missing[row_id].meta)
        ranked = fuse([[r.id for r in first] + below.tolist(), [r.id for r in second]])
        return [found[row_id] for row_id, _ in ranked if row_id in found][:k]

    def _caption_search(self, query: np.ndarray, k: int,
                        filters: Filters | None) -> list[Result]:
        """Photos whose caption's vector is nearest *query*, best first, scored by that
        cosine (also ``meta["caption_score"]``); copies of a photo share its caption."""
        if not self.lib.store.understanding_state(CAPTION_KIND)[0]:
            return []  # no captions: no text tower call, no file
        captions = self.lib.captions()
        unfiltered = filters is None or filters.is_empty()
        hits = captions.search(query, 2 * k if unfiltered else max(50 * k, 1000))
        ids = self.lib.store.ids_by_hash([digest for (digest, _), _ in hits], filters)
        ranked = [(row_id, score) for (digest, _), score in hits
                  for row_id in ids.get(digest, [])][:k]
        details = self.details([row_id for row_id, _ in ranked])
        return [Result(row_id, details[row_id]["path"], score,
                       details[row_id] | {"caption_score": score})
                for row_id, score in ranked if row_id in details]

    def _keyword_search(self, words: str, k: int,
                        filters: Filters | None) -> list[Result]:
        """BM25 over the words, fused by reciprocal-rank fusion with BM25 over the
        trigrams of recognised text (:meth:`KeywordIndex.search_text_fuzzy`), of the photos
        that hold at least :data:`.index.keywords.MIN_COVERAGE` of the query's words, exactly
        or by trigrams. A keyword cache found damaged is rebuilt and asked again
        (:meth:`Library.rebuild_keywords`)."""
        # Unfiltered, few hits are dropped (offline photos); filtered, rank every match.
        limit = k + FEW_OFFLINE if filters is None or filters.is_empty() else -1
        try:
            exact, fuzzy = self._keyword_hits(self.lib.keywords, words, limit)
        except sqlite3.DatabaseError as exc:
            exact, fuzzy = self._keyword_hits(self.lib.rebuild_keywords(exc), words, limit)
        held: dict[int, set[str]] = {}  # what each photo holds of the query, either way
        for hit in exact + fuzzy:
            held.setdefault(hit.id, set()).update(hit.words)
        allowed = self.lib.store.ids_matching(filters, among=[
            i for i, found in held.items() if coverage(words, found) >= MIN_COVERAGE])
        exact = [h for h in exact if h.id in allowed]
        fuzzy = [h for h in fuzzy if h.id in allowed]
        why = {h.id: h for h in fuzzy} | {h.id: h for h in exact}  # exact words say it best
        ranked = [row_id for row_id, _ in fuse([[h.id for h in exact],
                                                 [h.id for h in fuzzy]])][:k]
        details = self.details(ranked)
        return [Result(i, details[i]["path"], None, details[i] | {"matched": {
            "field": why[i].field, "snippet": why[i].snippet}})
            for i in ranked if i in details]

    def _keyword_hits(self, keywords, words: str, limit: int) -> tuple[list, list]:
        """(exact, fuzzy) hits of *words* in *keywords*, brought up to date first."""
        keywords.catch_up(self.lib.store)
        return keywords.search(words, limit), keywords.search_text_fuzzy(words, limit)

    def by_vector(self, query: np.ndarray, k: int = 20, min_score: float | None = None,
                  filters: Filters | None = None) -> list[Result]:
        """Top-k photos for a query embedding: (d,) float32, L2-normalised."""
        filters = self.lib.concepts.resolved(filters)
        vectors = self.lib.sync()
        offline = self.lib.store.offline_ids(FEW_OFFLINE) if filters.is_empty() else None
        if offline is not None and vectors.count() <= EXACT_UP_TO:
            # a graph with deleted and replaced nodes can leave a node unreachable, however
            # wide the beam; a small library is scored whole (2,000 vectors from SQLite: ~10 ms)
            ids, scores = self.exact(query, vectors.ids() - set(offline), k)
        elif offline is not None:
            ids, scores = vectors.search(query, k + len(offline))
            keep = ~np.isin(ids, np.asarray(offline, dtype=np.int64))
            ids, scores = ids[keep][:k], scores[keep][:k]
        elif (post_filtered := self._post_filtered(vectors, query, k, filters)) is not None:
            ids, scores = post_filtered
        else:
            allowed = self.lib.store.ids_matching(filters)
            if searched_exactly(len(allowed), vectors.count(), k):
                ids, scores = self.exact(query, allowed, k)
            else:
                ids, scores = vectors.search(query, k, allowed)
        details = self.details([int(i) for i in ids])
        results = [Result(int(i), details[int(i)]["path"], float(s), details[int(i)])
                   for i, s in zip(ids, scores) if int(i) in details]
        results = self._moments(query, results, k, filters)
        if min_score is not None:
            results = [r for r in results if r.score >= min_score]
        return results

    def _post_filtered(self, vectors: VectorIndex, query: np.ndarray, k: int,
                       filters: Filters) -> tuple[np.ndarray, np.ndarray] | None:
        """The filter's top-k among the graph's unfiltered top :data:`POST_FILTER_CANDIDATES`
        (ids, cosine similarities; best first), or None when *k* is above
        :data:`POST_FILTER_MAX_K` or fewer than *k* candidates pass (and there were more
        photos than candidates)."""
        if k > POST_FILTER_MAX_K:
            return None
        ids, scores = vectors.search(query, POST_FILTER_CANDIDATES)
        passing = self.lib.store.ids_matching(filters, among=ids.tolist())
        keep = np.fromiter((int(i) in passing for i in ids), bool, len(ids))
        if keep.sum() < k and len(ids) < vectors.count():
            return None
        return ids[keep][:k], scores[keep][:k]

    def _moments(self, query: np.ndarray, results: list[Result], k: int,
                 filters: Filters) -> list[Result]:
        """*results* with the videos whose keyframes match *query* best (the frame index),
        every video scored by the cosine similarity of its best keyframe or of the whole
        (its keyframes' mean: a video as the query), whichever is higher, and given that
        keyframe's time in ``meta["moment"]`` (seconds); the top *k* of them all."""
        model = self.lib.vector_index().model_id
        if not self.lib.store.frame_state(model)[0]:
            return results  # no videos: no frame index to open
        hits = self.lib.frames().search(query, FRAME_CANDIDATES * k if filters.is_empty()
                                        else max(50 * k, 1000))
        ids = self.lib.store.ids_by_hash(list(dict.fromkeys(d for (d, _), _ in hits)), filters)
        found = {r.id: r for r in results}
        fresh = [i for same in ids.values() for i in same if i not in found]
        details = self.details(fresh)
        found.update((i, Result(i, details[i]["path"], None, details[i]))
                     for i in fresh if i in details)
        videos = [r for r in found.values() if r.meta.get("duration") is not None]
        whole = self.vectors_of(np.asarray([r.id for r in videos], np.int64)) @ query
        for result, score in zip(videos, whole.tolist()):
            times, vectors = self.lib.store.frames_of(model, result.meta["hash"])
            if len(times):
                scores = vectors @ query
                best = int(np.argmax(scores))
                result.meta["moment"] = float(times[best])
                score = max(score, float(scores[best]))
            result.score = score
        ranked = [r for r in found.values() if r.score is not None]
        return sorted(ranked, key=lambda r: -r.score)[:k]

    def understand(self, text: str) -> Understood:
        """What *text* asks besides its looks (:func:`.domain.query_parser.understand`),
        with the names this library knows: its places, named people, cameras and albums."""
        state = (self.lib.store.seq(), tuple(self.lib.store.album_names()))
        if self._vocabulary is None or self._vocabulary[0] != state:
            cameras = [(model, make) for model, make, _ in self.lib.store.cameras()]
            self._vocabulary = (state, Vocabulary(sorted(self.lib.store.place_names()),
                                                  sorted(self.lib.store.person_names().values()),
                                                  cameras, list(state[1])))
        return understand(text, self._vocabulary[1])

    def with_understanding(self, terms: list[Term],
                           filters: Filters) -> tuple[Filters, list[Term]]:
        """The filters and terms of a query once each positive text is understood
        (:meth:`understand`): dates, place, people, cameras, media, text shown, albums,
        favourites, ratings and exclusions join *filters* (those set explicitly win); words to exclude become
        subtracted terms; the rest of each text stays a term."""
        rest: list[Term] = []
        for term in terms:
            if term.text is None or term.weight <= 0:
                rest.append(term)
                continue
            found = self.understand(term.text)
            people: dict[str, list[int]] = {}  # name → ids, lowest first (one query)
            for person, name in sorted(self.lib.store.person_names().items()):
                people.setdefault(name, []).append(person)
            filters = dataclasses.replace(
                filters, taken_after=filters.taken_after or found.after,
                taken_before=filters.taken_before or found.before,
                place=filters.place or found.place, cameras=filters.cameras or found.camera,
                media=filters.media or found.media,
                says=" ".join(filter(None, [filters.says, found.says])),
                people=filters.people + [i for name in found.people
                                         for i in people.get(name, [])[:1]],
                not_people=filters.not_people + [i for name in found.not_
                                                 for i in people.get(name, [])[:1]],
                albums=filters.albums + [album.id for name in found.albums
                                         if (album := self.lib.store.album_named(name))],
                favourites=filters.favourites or found.favourites,
                min_rating=filters.min_rating or found.min_rating)
            rest += [Term(text=word, weight=-abs(term.weight)) for word in found.not_
                     if word not in people]
            if found.text:
                rest.append(dataclasses.replace(term, text=found.text))
        return filters, rest

    def _photos_of(self, filters: Filters, k: int) -> list[Result]:
        """The newest *k* photos that *filters* (people, with nothing else asked) allow."""
        return self.photos([row[0] for row in self.lib.store.timeline(filters)][:k])

    @staticmethod
    def _split_concepts(terms: list[Term], names: list[str]) -> tuple[list[str], list[Term]]:
        """The concepts named in the positive text terms, and the terms without them."""
        found: list[str] = []
        rest: list[Term] = []
        for term in terms:
            if term.text is None or term.weight <= 0:
                rest.append(term)
                continue
            named, text = mentioned(term.text, names)
            found += [n for n in named if n not in found]
            if text:
                rest.append(dataclasses.replace(term, text=text))
        return found, rest

    def _concept_search(self, names: list[str], terms: list[Term], k: int,
                        min_score: float | None, filters: Filters, mode: str,
                        field: str) -> list[Result]:
        """Concepts fused with the rest of a query by reciprocal-rank fusion. Each side
        brings its top candidates; each ranking then ranks all of them (a concept by its
        probe, the text by its own order and then the image cosine), so a photo that is
        Rex *and* at the beach beats one that is only either. ``score`` is the rest of the
        query's cosine similarity, or with a concept alone its probability (then
        ``meta["scored_by"]`` names the concept); ``meta["concepts"]`` holds each
        concept's probability."""
        pool = max(10 * k, 200)
        probes = [self.lib.concepts.probe(name) for name in names]
        found: dict[int, Result] = {}
        for probe in probes:
            for result in self.by_vector(probe.direction, pool, None, filters):
                found.setdefault(result.id, result)
        text = self.run(terms, pool, min_score, filters, mode, field) if terms else []
        for result in text:
            found[result.id] = result
        ids = np.asarray(list(found), np.int64)
        vectors = self.vectors_of(ids)
        rankings = [ids[np.argsort(-(vectors @ probe.weights), kind="stable")].tolist()
                    for probe in probes]
        if terms:
            first = [r.id for r in text]
            ranked = set(first)
            query = query_vector(self.lib.embedder, terms)
            rankings.append(first + [
                i for i in ids[np.argsort(-(vectors @ query), kind="stable")].tolist()
                if i not in ranked])
        chance = {probe.name: probe.probability(vectors) for probe in probes}
        row = {i: n for n, i in enumerate(ids.tolist())}
        refused = set().union(*(self.lib.concepts.refused(p.name) for p in probes))
        out = []
        for row_id, _ in fuse(rankings):
            if len(out) == k:
                break
            result = found[row_id]
            if result.meta.get("hash") in refused:
                continue  # "No, this is not …": never found by that concept again
            result.meta["concepts"] = {name: float(p[row[row_id]]) for name, p in chance.items()}
            if not terms:
                result.score = result.meta["concepts"][probes[0].name]
                result.meta["scored_by"] = probes[0].name
            out.append(result)
        return out

    def photos(self, ids: list[int]) -> list[Result]:
        """Library photos by row id, in that order (ids no longer in the library left
        out), with their metadata and no score."""
        details = self.details(ids)
        return [Result(i, details[i]["path"], None, details[i]) for i in ids if i in details]

    def details(self, ids: list[int]) -> dict[int, dict]:
        """:meth:`Store.details` with what the understanding pass learned of each photo
        (:func:`.understanding.passes.summary`: ``text``, ``place``), its named ``people``,
        its ``rating`` (1–5) and ``favourite`` where set, its ``albums``; ``missing: True``
        marks a photo whose file is not there now (its folder offline, or the file gone
        since the last index run): shown, never passed off as there."""
        details = self.lib.store.details(ids)
        for item in details.values():
            if item["status"] == OFFLINE or not os.path.exists(item["path"]):
                item["missing"] = True
        understood = self.lib.store.understood([d["hash"] for d in details.values() if d["hash"]])
        for item in details.values():
            item.update(summary(understood.get(item["hash"], {})))
        names = self.lib.store.concept_names()
        if names and details:
            self.lib.concepts.tag(details, names)
        digests = [d["hash"] for d in details.values() if d["hash"]]
        faces = self.lib.people.in_photos(digests)
        marks, albums = self.lib.store.marks_of(digests), self.lib.store.albums_of(digests)
        for item in details.values():
            named = [name for _, name in faces.get(item["hash"], []) if name]
            if named:
                item["people"] = named
            if item["hash"] in marks:
                item["rating"] = marks[item["hash"]].rating
                item["favourite"] = marks[item["hash"]].favourite
            if item["hash"] in albums:
                item["albums"] = albums[item["hash"]]
        return details

    def understood(self, digest: str) -> dict[str, str]:
        """What the understanding pass learned of the photo with content hash *digest*
        (:func:`.understanding.passes.summary`: ``text``, ``place``; empty where nothing yet)."""
        return summary(self.lib.store.understood([digest]).get(digest, {}))

    def exact(self, query: np.ndarray, ids: set[int], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k by cosine similarity among the photos *ids*: their vectors (from the
        saved index file where it holds them unchanged, :meth:`.VectorIndex.saved_vectors`,
        else from the database, in chunks) scored by matrix products. *query*: (d,) float32,
        L2-normalised.

        Returns:
            ((k',) int64 ids, (k',) float32 cosine similarities), best first.
        """
        best_ids, best_scores = np.empty(0, np.int64), np.empty(0, np.float32)
        for chunk_ids, chunk in self._stored_vectors(np.fromiter(ids, np.int64, len(ids))):
            best_ids, best_scores = _best(np.concatenate([best_ids, chunk_ids]),
                                          np.concatenate([best_scores, chunk @ query]), k)
        order = np.argsort(-best_scores)
        return best_ids[order], best_scores[order]

    def _stored_vectors(self, ids: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The embeddings of *ids* ((n,) int64) in chunks of ((m,) int64 ids, (m, d) float32
        vectors): first those the saved index file holds unchanged
        (:meth:`.VectorIndex.saved_vectors`, ~1 µs a vector), then the rest from the
        database (~4.4 µs)."""
        wanted = np.sort(ids)  # read in file order
        held, vectors = self.lib.vector_index().saved_vectors(wanted)
        yield wanted[held], vectors
        yield from self.lib.store.vectors(ids=wanted[~held].tolist())

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The stored embeddings of *ids*, ``(n, d) float32``, in their order."""
        found = {}
        for chunk_ids, chunk in self._stored_vectors(ids):
            found.update(zip(chunk_ids.tolist(), chunk))
        return np.stack([found[i] for i in ids.tolist()]) if len(ids) else \
            np.empty((0, self.lib.vector_index().dim), np.float32)

    def places(self) -> dict[str, list[tuple[str, int]]]:
        """Country → [(town, photos)]: where the library's photos were taken, from the
        offline place names of their EXIF GPS (:mod:`.understanding.places`); countries with
        the most photos first, and towns likewise; "" for a place with no country."""
        out: dict[str, list[tuple[str, int]]] = {}
        for country, town, photos in self.lib.store.place_counts():
            out.setdefault(country, []).append((town, photos))
        return dict(sorted(out.items(), key=lambda item: -sum(n for _, n in item[1])))

    def browse(self, filters: Filters | None = None) -> Timeline:
        """The photos that pass *filters*, newest first, by month: what the GUI shows
        without a query."""
        return Timeline(self.lib.store.timeline(self.lib.concepts.resolved(filters)))
