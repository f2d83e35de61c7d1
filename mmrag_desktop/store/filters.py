"""Search filters (:class:`.domain.query.Filters`) as an SQL condition on ``photos``: the one
place a filter becomes SQL."""

from __future__ import annotations

import json
import math
import re

from ..core.paths import folder_range
from ..domain.query import KM_PER_DEGREE, Filters
from .sql import marks


def filter_sql(filters: Filters | None) -> tuple[str, list]:
    """An SQL condition on the ``photos`` table for *filters* (``"1"`` for none), and its
    parameters."""
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
        parts.append("hash IN (SELECT hash FROM understanding WHERE kind = 'place' "
                     "AND ' ' || text || ' ' LIKE ?)")
        params.append(f"% {filters.place.strip()} %")
    for person in filters.people:  # each of them: photos with all the people asked for
        parts.append("hash IN (SELECT hash FROM faces WHERE person = ? AND not_face = 0)")
        params.append(person)
    for person in filters.not_people:
        parts.append("hash NOT IN (SELECT hash FROM faces WHERE person = ? AND not_face = 0)")
        params.append(person)
    if filters.media in ("photo", "video"):
        parts.append("duration IS NULL" if filters.media == "photo" else "duration IS NOT NULL")
    for word in re.findall(r"\w+", filters.says):
        parts.append("hash IN (SELECT hash FROM understanding WHERE kind = 'text' "
                     "AND text LIKE ? ESCAPE '\\')")
        params.append(f"%{word.replace('_', chr(92) + '_')}%")
    for album in filters.albums:  # each of them
        parts.append("hash IN (SELECT hash FROM album_photos WHERE album = ?)")
        params.append(album)
    if filters.favourites:
        parts.append("hash IN (SELECT hash FROM marks WHERE favourite = 1)")
    if filters.min_rating:
        parts.append("hash IN (SELECT hash FROM marks WHERE rating >= ?)")
        params.append(filters.min_rating)
    if filters.ids is not None:
        # One JSON parameter, however many: SQLite's limit on variables never applies.
        parts.append("id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(sorted(filters.ids)))
    return " AND ".join(parts) or "1", params
