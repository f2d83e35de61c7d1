"""Personal concepts in a library: examples labelled yes or no, the probe learned from
them (:mod:`..domain.concepts`), the photos it tags, and filters by concept."""

from __future__ import annotations

import dataclasses
import os
import zlib
from typing import TYPE_CHECKING

import numpy as np

from ..domain.concepts import BACKGROUND, TAGGED, ConceptError, Probe, learn
from ..domain.query import Filters

if TYPE_CHECKING:  # the model and torch load on first use (a fast GUI launch)
    from .facade import Library


class Concepts:
    """Personal concepts (``library.concepts``)."""

    def __init__(self, lib: Library):
        self.lib = lib
        self._probes: dict[tuple, Probe] = {}  # (name, model, examples) → learned probe

    def names(self) -> list[str]:
        """The concepts' names, alphabetically."""
        return self.lib.store.concept_names()

    def label(self, name: str, paths: list[str], yes: bool = True) -> Probe:
        """Make the library photos *paths* examples of concept *name* (a new name makes a
        new concept), or with *yes* False counter-examples (rejected suggestions), and
        learn it again.

        Raises:
            ConceptError: no name, or a path the library has no embedded photo at.
        """
        name = " ".join(name.split())
        if not name:
            raise ConceptError("a concept needs a name")
        digests = self.lib.indexed_hashes(paths, ConceptError)
        with self.lib.writing("learning a concept"):
            self.lib.store.label_examples(name, digests, yes)
        return self.probe(name)

    def forget(self, name: str, paths: list[str] | None = None) -> int:
        """Remove concept *name*, or only its examples at *paths*. Returns the examples
        removed.

        Raises:
            ConceptError: no such concept.
        """
        self._known(name)
        digests = None if paths is None else [
            d for d in (self.lib.store.hash_of(os.path.abspath(p)) for p in paths) if d]
        with self.lib.writing("changing a concept"):
            return self.lib.store.forget_concept(name, digests)

    def all(self) -> list[tuple[Probe | None, int, str]]:
        """Each concept: (its probe, photos tagged with it, why it has no probe: "" when
        learned), alphabetically."""
        out = []
        for name in self.lib.store.concept_names():
            try:
                probe = self.probe(name)
            except ConceptError as exc:
                out.append((None, 0, str(exc)))
                continue
            out.append((probe, len(self.tagged(probe)), ""))
        return out

    def probe(self, name: str) -> Probe:
        """Concept *name* learned from its examples' embeddings under the library's model
        (:func:`.domain.concepts.learn`; kept until the examples or the model change).

        Raises:
            ConceptError: no such concept, or none of its examples has an embedding.
        """
        name = self._known(name)
        examples = tuple(self.lib.store.concept_examples(name))
        index = self.lib.vector_index()
        key = (name.casefold(), index.model_id, examples)
        if key not in self._probes:
            vectors = self.lib.store.vectors_by_hash([digest for digest, _ in examples])
            dim = index.dim

            def stack(yes: bool) -> np.ndarray:
                found = [vectors[d] for d, y in examples if y == yes and d in vectors]
                return np.stack(found) if found else np.empty((0, dim), np.float32)

            background = self.lib.store.sample_vectors(
                BACKGROUND, zlib.crc32(name.casefold().encode()), {d for d, _ in examples})
            probe = learn(name, stack(True), stack(False), background.reshape(-1, dim))
            for old in [k for k in self._probes if k[0] == key[0]]:  # learned from less
                del self._probes[old]
            self._probes[key] = probe
        return self._probes[key]

    def _known(self, name: str) -> str:
        """*name* as the library spells it. Raises ConceptError for an unknown one."""
        for known in self.lib.store.concept_names():
            if known.casefold() == " ".join(name.split()).casefold():
                return known
        raise ConceptError(f"no concept named “{name}” (mmrag concepts list)")

    def refused(self, name: str) -> set[str]:
        """Content hashes the user said are not concept *name* ("No, this is not …"):
        never tagged with it or found by it, whatever its probe says."""
        return {digest for digest, yes in self.lib.store.concept_examples(self._known(name))
                if not yes}

    def tagged(self, probe: Probe) -> set[int]:
        """The embedded, online photos tagged with *probe*'s concept (probability ≥
        :data:`.domain.concepts.TAGGED` by their stored embedding, as :meth:`tag` says), but
        those the user refused: an HNSW search along its direction, widened until it reaches
        photos below the threshold."""
        floor, k, vectors = probe.cosine_for(TAGGED), 256, self.lib.sync()
        while True:
            ids, scores = vectors.search(probe.direction, k)
            if len(ids) < k or scores[-1] < floor:
                break
            k *= 4
        found = self.lib.store.ids_matching(among=ids[scores >= floor].tolist())
        refused = self.lib.store.ids_by_hash(sorted(self.refused(probe.name)))
        return found - {i for ids_ in refused.values() for i in ids_}

    def resolved(self, filters: Filters | None) -> Filters:
        """*filters* with its concepts turned into the ids of the photos tagged with them
        (all of them)."""
        filters = filters or Filters()
        if not filters.concepts:
            return filters
        ids: set[int] | None = None
        for name in filters.concepts:
            tagged = self.tagged(self.probe(name))
            ids = tagged if ids is None else ids & tagged
        return dataclasses.replace(filters, concepts=[], ids=frozenset(ids or ()))

    def tag(self, details: dict[int, dict], names: list[str]) -> None:
        """Add ``concepts``, {name: probability}, to each photo's details: the concepts it
        is tagged with (probability ≥ :data:`.domain.concepts.TAGGED`, and not refused by the
        user: :meth:`refused`)."""
        probes = []
        for name in names:
            try:
                probes.append(self.probe(name))
            except ConceptError:
                continue  # no usable example yet: it tags nothing
        refused = {probe.name: self.refused(probe.name) for probe in probes}
        for ids, vectors in self.lib.store.vectors(ids=list(details)):
            chances = {probe.name: probe.probability(vectors) for probe in probes}
            for n, row_id in enumerate(ids.tolist()):
                details[row_id]["concepts"] = {
                    name: float(p[n]) for name, p in chances.items()
                    if p[n] >= TAGGED and details[row_id]["hash"] not in refused[name]}
