"""Grouping faces into people: the rules, given which faces are near which.

A new face joins the person of its nearest grouped face within :data:`JOIN_DISTANCE`, unless
the user said that face is not that person (Ente's assignment of new faces). The faces left
are clustered among themselves by DBSCAN (Ester, Kriegel, Sander & Xu, KDD 1996) with
``eps`` = :data:`JOIN_DISTANCE` and a face counted as a core point when it has a neighbour
in another photo: two photos of the same face make a person (a relative seen twice matters);
faces with no such neighbour wait for a later pass, as in Immich's incremental clustering.
Existing people are never dissolved or merged by it, so names and the user's corrections
stay.

:data:`JOIN_DISTANCE` is measured on ``../shared/data/faces-dev`` with dlib's descriptors
(:mod:`.understanding.faces`): same-person distances reach 0.52, different people's start at
0.69; dlib publishes 0.6 for LFW. 0.55 sits in the gap, on the strict side (look-alike
relatives merged are the pain users report most).
"""

from __future__ import annotations

JOIN_DISTANCE = 0.55
"""Largest Euclidean distance between two face descriptors of the same person."""


def joins(near: list[list[tuple[int, float]]], faces: list[int], persons: list[int],
          rejected: set[tuple[int, int]]) -> dict[int, int]:
    """New face id → the person it joins.

    Args:
        near: for each new face, (index into the grouped faces, distance), nearest first,
            within :data:`JOIN_DISTANCE`.
        faces: the new faces' ids, in the order of *near*.
        persons: each grouped face's person.
        rejected: (face, person) pairs the user said are not the same.
    """
    out = {}
    for face, candidates in zip(faces, near):
        for index, _ in candidates:
            if (face, persons[index]) not in rejected:
                out[face] = persons[index]
                break
    return out


def clusters(near: list[list[tuple[int, float]]], photos: list[str]) -> list[list[int]]:
    """DBSCAN over faces with a neighbour in another photo as the core points: groups of
    indices (each a new person; faces of at least two photos), largest first; faces in no
    group are left out.

    Args:
        near: for each face, (index of another face, distance) within the radius.
        photos: each face's photo (content hash): neighbours in the same photo are not
            the same person and do not count.
    """
    n = len(near)
    edges = [[j for j, _ in row if j != i and photos[j] != photos[i]] for i, row in enumerate(near)]
    core = [bool(row) for row in edges]
    label = [-1] * n
    groups: list[list[int]] = []
    for start in range(n):
        if not core[start] or label[start] >= 0:
            continue
        group, stack = [], [start]
        label[start] = len(groups)
        while stack:  # expand through core points; border points join, but do not expand
            i = stack.pop()
            group.append(i)
            for j in edges[i]:
                if label[j] < 0:
                    label[j] = len(groups)
                    if core[j]:
                        stack.append(j)
                    else:
                        group.append(j)
        groups.append(group)
    return sorted(groups, key=len, reverse=True)
