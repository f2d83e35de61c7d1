"""What other photo apps wrote about a photo in XMP (Adobe's Extensible Metadata Platform, ISO
16684-1): its star rating (``xmp:Rating``), keywords (``dc:subject``) and description
(``dc:description``), embedded in the file or in a sidecar (``photo.xmp``, as Lightroom and
digiKam write it, or ``photo.jpg.xmp``, as darktable does). Parsed with ``defusedxml``, which
refuses entity expansion and external entities (a hostile packet cannot blow up or read files).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from defusedxml import ElementTree
from PIL import Image

_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
_RATING = "{http://ns.adobe.com/xap/1.0/}Rating"
_SUBJECT = "{http://purl.org/dc/elements/1.1/}subject"
_DESCRIPTION = "{http://purl.org/dc/elements/1.1/}description"
MAX_PACKET = 1 << 20  # bytes of XMP read: a real packet is a few KB
MAX_KEYWORDS = 200


@dataclass(frozen=True)
class Xmp:
    """A photo's XMP facts: ``rating`` 1–5 (None: not rated, or rejected: -1), ``keywords``
    (in order, each once) and ``description`` ("" for none)."""

    rating: int | None = None
    keywords: tuple[str, ...] = ()
    description: str = ""

    def __bool__(self) -> bool:
        return bool(self.rating or self.keywords or self.description)

    def text(self) -> str:
        """What search reads: the keywords, then the description."""
        return "\n".join(filter(None, [", ".join(self.keywords), self.description]))

    def over(self, other: Xmp | None) -> Xmp:
        """These facts, with *other*'s where these have none (a sidecar over the file's)."""
        if other is None:
            return self
        return Xmp(self.rating if self.rating is not None else other.rating,
                   self.keywords or other.keywords, self.description or other.description)


def parse_xmp(packet: bytes | str) -> Xmp:
    """The facts in an XMP packet; an empty :class:`Xmp` when it is not XML or says nothing
    (malformed metadata never costs the photo)."""
    try:
        root = ElementTree.fromstring(packet[:MAX_PACKET])
    except Exception:  # noqa: BLE001 - defusedxml's refusals and parse errors alike
        return Xmp()
    rating, keywords, description = None, [], ""
    for element in root.iter():
        value = element.get(_RATING) if element.tag != _RATING else element.text
        if value is not None and rating is None:
            try:
                stars = round(float(value))
            except ValueError:
                stars = 0
            rating = stars if 1 <= stars <= 5 else None
        if element.tag == _SUBJECT:
            keywords += [li.text.strip() for li in element.iter(f"{_RDF}li") if li.text]
        elif element.tag == _DESCRIPTION and not description:
            description = next((li.text.strip() for li in element.iter(f"{_RDF}li")
                                if li.text and li.text.strip()), (element.text or "").strip())
    keywords = list(dict.fromkeys(k for k in keywords if k))[:MAX_KEYWORDS]
    return Xmp(rating, tuple(keywords), description)


def embedded_xmp(img: Image.Image) -> Xmp:
    """The XMP packet inside an open image (JPEG APP1, PNG iTXt, WebP, TIFF tag 700)."""
    packet = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp")
    if packet is None and hasattr(img, "tag_v2"):
        packet = img.tag_v2.get(700)
    return parse_xmp(packet) if packet else Xmp()


def sidecar_xmp(path: str | os.PathLike) -> Xmp | None:
    """The facts in the photo's sidecar (``name.jpg.xmp`` first, then ``name.xmp``), None
    without one."""
    path = os.fspath(path)
    for sidecar in (path + ".xmp", os.path.splitext(path)[0] + ".xmp"):
        try:
            with open(sidecar, "rb") as f:
                return parse_xmp(f.read(MAX_PACKET))
        except OSError:
            continue
    return None
