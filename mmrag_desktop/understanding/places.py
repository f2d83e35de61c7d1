"""Place names for photos' GPS coordinates, offline.

The lookup is ``reverse_geocode`` (Richard Penman, LGPL-2.1,
https://github.com/richardpenman/reverse_geocode): a k-d tree over the GeoNames
"cities1000" extract it ships (every populated place with at least 1,000 people, their
region and county; GeoNames, https://www.geonames.org/, CC BY 4.0). It never goes online:
the data file is inside the package. A nearest populated place is what a point lookup
gives, not a border test, so a photo at the Eiffel Tower is nearest to Vanves; the nearest
large city is named beside it, because that is what a person types ("Paris").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
        """The place as a person reads it: ``Vanves (Paris), Île-de-France, France``."""
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


def places(coordinates: list[tuple[float, float]]) -> list[Place | None]:
    """The place of each (latitude, longitude) in degrees, or None beyond :data:`MAX_KM`
    of any populated place. Loads the GeoNames data on first call (~1 s)."""
    if not coordinates:
        return []
    import reverse_geocode

    nearest = reverse_geocode.search(coordinates)
    tiers = [(reverse_geocode.search(coordinates, min_population=population), km)
             for population, km in CITY_TIERS]
    out: list[Place | None] = []
    for i, ((lat, lon), near) in enumerate(zip(coordinates, nearest)):
        km = distance_km(lat, lon, near["latitude"], near["longitude"])
        if km > MAX_KM:
            out.append(None)
            continue
        city_name = next((found[i]["city"] for found, limit in tiers if distance_km(
            lat, lon, found[i]["latitude"], found[i]["longitude"]) <= limit), "")
        if city_name == near["city"]:
            city_name = ""
        out.append(Place(near["city"], city_name, near.get("county", ""),
                         near.get("state", ""), near.get("country", ""),
                         near["country_code"], round(km, 2)))
    return out
