"""Search filters (:class:`.domain.query.Filters`) as an SQL condition on ``photos``: the one
place a filter becomes SQL."""

from __future__ import annotations

import json
import math
import re

from ..core.paths import folder_range
from ..domain.query import KM_PER_DEGREE, Filters
from .sql import marks


def _has(table: str, where: str, per_row: bool, negated: bool = False) -> str:
    """The condition that a photo's content hash has a row of *table* meeting *where* (its
    columns written ``{c}name``). For all the photos that pass: an ``IN`` over the table's
    matching hashes, found by its index on those columns. *per_row*, for checking a few
    photos: a correlated ``EXISTS`` looked up by the table's hash, the columns' indexes kept
    out by SQLite's unary ``+`` (300 candidates against a person in 30,000 of a million
    photos: 0.9 ms instead of 25, which the ``IN`` spends listing the person's hashes)."""
    if per_row:
        found = f"EXISTS (SELECT 1 FROM {table} AS t WHERE t.hash = photos.hash AND " \
                f"{where.format(c='+')})"
        return f"NOT {found}" if negated else found
    return f"hash {'NOT IN' if negated else 'IN'} (SELECT hash FROM {table} WHERE " \
           f"{where.format(c='')})"


def filter_sql(filters: Filters | None, per_row: bool = False) -> tuple[str, list]:
    """An SQL condition on the ``photos`` table for *filters* (``"1"`` for none), and its
    parameters. *per_row*: written to check a few photos by row id, not to list all that
    pass (:func:`_has`)."""
    if filters is None:
        return "1", []
    parts, params = [], []
    if filters.folders:
        ors = []
        for folder in filters.folders:
            ors.append("(path >= ? AND path < ?)")
            params += list(folder_range(folder))
        parts.append("(" + " OR ".join(ors) + ")")
    if filters.taken_after:
        parts.append("taken_at >= ?")
        params.append(filters.taken_after)
    if filters.taken_before:
        before = filters.taken_before
        if len(before) == 10:  # a date: include the whole day
            before += "T23:59:59.999999"
        parts.append("taken_at <= ?")
        params.append(before)
    if filters.cameras:
        parts.append(f"camera_model IN ({marks(filters.cameras)})")
        params += filters.cameras
    if filters.near:
        # The equirectangular approximation: within 1 % of the great-circle distance
        # up to a few hundred km, and plain SQL (SQLite's math functions are optional).
        # Longitudes do not wrap at ±180°.
        lat, lon, km = filters.near
        squeeze = math.cos(math.radians(lat)) ** 2
        parts.append("gps_lat IS NOT NULL AND (gps_lat - ?) * (gps_lat - ?) + "
                     "(gps_lon - ?) * (gps_lon - ?) * ? <= ?")
        params += [lat, lat, lon, lon, squeeze, (km / KM_PER_DEGREE) ** 2]
    if filters.place.strip():
        # Padded with spaces: "Paris" matches the word, not "Parisot". (LIKE ignores
        # case for ASCII letters only.)
        parts.append(_has("understanding", "{c}kind = 'place' AND ' ' || text || ' ' LIKE ?",
                          per_row))
        params.append(f"% {filters.place.strip()} %")
    for person in filters.people:  # each of them: photos with all the people asked for
        parts.append(_has("faces", "{c}person = ? AND not_face = 0", per_row))
        params.append(person)
    for person in filters.not_people:
        parts.append(_has("faces", "{c}person = ? AND not_face = 0", per_row, negated=True))
        params.append(person)
    if filters.media in ("photo", "video"):
        parts.append("duration IS NULL" if filters.media == "photo" else "duration IS NOT NULL")
    for word in re.findall(r"\w+", filters.says):
        parts.append(_has("understanding", "{c}kind = 'text' AND text LIKE ? ESCAPE '\\'", per_row))
        params.append(f"%{word.replace('_', chr(92) + '_')}%")
    for album in filters.albums:  # each of them
        parts.append(_has("album_photos", "{c}album = ?", per_row))
        params.append(album)
    if filters.favourites:
        parts.append(_has("marks", "favourite = 1", per_row))
    if filters.min_rating:
        parts.append(_has("marks", "{c}rating >= ?", per_row))
        params.append(filters.min_rating)
    if filters.ids is not None:
        # One JSON parameter, however many: SQLite's limit on variables never applies.
        parts.append("id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(sorted(filters.ids)))
    return " AND ".join(parts) or "1", params
