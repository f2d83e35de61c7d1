"""What each watched folder is doing, and how many photos it holds: one definition for the
CLI (``mmrag folders``, ``mmrag status``) and the GUI's folders panel."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

OK, ERROR, PENDING, OFFLINE = "ok", "error", "pending", "offline"
"""Row states: embedded; could not be read (``error`` holds why); waiting to be
(re-)embedded; on a root folder that is not reachable now."""


@dataclass
class Activity:
    """What a running watcher knows about its folders (the CLI has none): folders with
    changes not yet indexed (``busy``), whether indexing is paused, each failed folder's
    reason, each folder the last run found offline and why, and whether watching has
    started (the model loaded)."""

    busy: set[str] = field(default_factory=set)
    paused: bool = False
    failures: dict[str, str] = field(default_factory=dict)
    offline: dict[str, str] = field(default_factory=dict)
    started: bool = True


@dataclass
class FolderState:
    """One watched folder. ``photos`` counts the photos in the library, those missing but
    kept until the user confirms included; ``errors`` the files that could not be indexed.
    ``state`` is ``indexing``, ``up to date`` (with how many photos are missing but kept),
    ``indexed`` (no watcher: as of the last run), ``offline`` (with why, when known),
    ``failed: why``, ``paused`` or ``waiting for the model``."""

    path: str
    photos: int
    errors: int
    state: str


def library_photos(by_status: dict[str, int]) -> int:
    """Photos in the library from counts per status: indexed ones, and missing ones kept
    (not the files that could not be indexed)."""
    return by_status.get(OK, 0) + by_status.get(OFFLINE, 0)


def folder_states(roots: list[str], counts: dict[str, dict[str, int]],
                  activity: Activity | None = None) -> list[FolderState]:
    """The state of each of *roots* from the store's counts per root and status
    (:meth:`.store.database.Store.root_counts`) and, in the app, the watcher's *activity*."""
    states = []
    for root in roots:
        by_status = counts.get(root, {})
        if activity is not None and root in activity.failures:
            state = f"failed: {activity.failures[root]}"
        elif not os.path.isdir(root):
            state = "offline"
        elif activity is not None and root in activity.offline:
            state = f"offline ({activity.offline[root]})"
        elif activity is not None and root in activity.busy:
            state = "paused" if activity.paused else "indexing"
        elif activity is not None and not activity.started:
            state = "waiting for the model"
        else:
            state = "up to date" if activity is not None else "indexed"
            missing = by_status.get(OFFLINE, 0)
            if missing:  # held back: vanished at once, not yet confirmed
                state += f", {missing:,} missing (kept)"
        states.append(FolderState(root, library_photos(by_status), by_status.get(ERROR, 0),
                                  state))
    return states
