"""Personal concepts: their names and example contents, yes or no."""

from __future__ import annotations

import time


class Concepts:
    """Concept names and examples."""

    def concept_names(self) -> list[str]:
        """The concepts' names, as the user wrote them, alphabetically."""
        return [r[0] for r in self.db.execute("SELECT name FROM concepts ORDER BY name")]

    def concept_examples(self, name: str) -> list[tuple[str, bool]]:
        """(content hash, yes) of a concept's examples; empty for an unknown concept."""
        return [(digest, bool(yes)) for digest, yes in self.db.execute(
            "SELECT hash, yes FROM concept_examples WHERE concept = ? ORDER BY added, hash",
            [name])]

    def label_examples(self, name: str, digests: list[str], yes: bool) -> None:
        """Make contents yes (or no) examples of concept *name*, creating it if new (names
        are compared without case); an example said again takes the new answer."""
        now = time.time()
        with self.transaction():
            self.db.execute("INSERT OR IGNORE INTO concepts(name, created) VALUES (?, ?)",
                            [name, now])
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO concept_examples(concept, hash, yes, added) "
                "VALUES ((SELECT name FROM concepts WHERE name = ?), ?, ?, ?)",
                [(name, digest, int(yes), now) for digest in digests])

    def forget_concept(self, name: str, digests: list[str] | None = None) -> int:
        """Remove a concept (with *digests*: only those examples). Returns the examples
        removed."""
        with self.transaction():
            if digests is None:
                self.db.execute("DELETE FROM concepts WHERE name = ?", [name])
                return self.db.execute("DELETE FROM concept_examples WHERE concept = ?",
                                       [name]).rowcount
            return sum(self.db.execute("DELETE FROM concept_examples WHERE concept = ? AND "
                                       "hash = ?", [name, digest]).rowcount for digest in digests)
