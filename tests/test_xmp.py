"""Ratings, keywords and descriptions other photo apps wrote in XMP — embedded in the file,
or in a sidecar as Lightroom and digiKam (``photo.xmp``) or darktable (``photo.jpg.xmp``)
write it — are read when a photo is indexed: the keywords are searchable, the rating becomes
the photo's stars unless the user rated it here; a hostile packet is refused, not expanded."""

from __future__ import annotations

import shutil

from PIL import Image

from mmrag_desktop.domain.query import Filters, Term
from mmrag_desktop.media.xmp import parse_xmp, sidecar_xmp
from conftest import coco_photos


def packet(rating: int | None = None, keywords: tuple[str, ...] = (), description: str = "",
           as_element: bool = False) -> str:
    """An XMP packet as Lightroom writes one (rating as an attribute, or an element)."""
    rating_attr = f' xmp:Rating="{rating}"' if rating is not None and not as_element else ""
    rating_el = f"<xmp:Rating>{rating}</xmp:Rating>" if rating is not None and as_element else ""
    subject = ("<dc:subject><rdf:Bag>" + "".join(f"<rdf:li>{k}</rdf:li>" for k in keywords)
               + "</rdf:Bag></dc:subject>") if keywords else ""
    described = (f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{description}'
                 "</rdf:li></rdf:Alt></dc:description>") if description else ""
    return ('<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
            'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
            f'xmlns:dc="http://purl.org/dc/elements/1.1/"{rating_attr}>'
            f"{rating_el}{subject}{described}</rdf:Description></rdf:RDF></x:xmpmeta>"
            '<?xpacket end="w"?>')


BOMB = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
        ']><x:xmpmeta xmlns:x="adobe:ns:meta/">&c;</x:xmpmeta>')


def test_packets_are_read_as_the_apps_write_them():
    facts = parse_xmp(packet(4, ("Lisbon", "tram", "Lisbon"), "Tram 28 at dusk"))
    assert (facts.rating, facts.keywords, facts.description) == (
        4, ("Lisbon", "tram"), "Tram 28 at dusk")
    assert parse_xmp(packet(3, as_element=True)).rating == 3
    assert parse_xmp(packet(-1)).rating is None  # rejected in Lightroom: no stars
    assert parse_xmp(packet(0)).rating is None and not parse_xmp(packet(0))
    assert not parse_xmp(BOMB) and not parse_xmp(b"\xff\xd8 not xml")


def test_embedded_and_sidecar_xmp_are_searchable_and_rate_the_photo(engine, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    photos = coco_photos()
    embedded = folder / "embedded.jpg"
    Image.open(photos[0]).save(embedded, xmp=packet(5, ("Hardanger", "fjord")).encode())
    darktable = folder / "darktable.jpg"
    shutil.copy(photos[1], darktable)
    (folder / "darktable.jpg.xmp").write_text(packet(2, ("Vesuvius",)))
    lightroom = folder / "lightroom.jpg"
    Image.open(photos[2]).save(lightroom, xmp=packet(1, ("ignored",)).encode())
    (folder / "lightroom.xmp").write_text(packet(None, (), "Grandmother's kitchen in Porto"))
    bomb = folder / "bomb.jpg"
    Image.open(photos[3]).save(bomb, xmp=BOMB.encode())
    rated_here = folder / "rated.jpg"
    Image.open(photos[4]).save(rated_here, xmp=packet(5).encode())
    for photo in photos[5:10]:
        shutil.copy(photo, folder / photo.name)
    assert sidecar_xmp(darktable).keywords == ("Vesuvius",)

    engine.folders.add(folder)
    report = engine.updates.index()
    assert report.embedded == 10 and not report.errors  # the bomb cost nothing
    engine.albums.rate([str(rated_here)], 2)

    def hits(words: str) -> list[str]:
        return [r.path for r in engine.search.run([Term(words)], k=3, mode="keyword")]

    assert hits("fjord")[:1] == [str(embedded)]
    assert hits("Vesuvius")[:1] == [str(darktable)]
    assert hits("kitchen Porto")[:1] == [str(lightroom)]
    [result] = engine.search.run([Term("Vesuvius")], k=1, mode="keyword")
    assert result.meta["matched"]["field"] == "keywords"
    # the sidecar's rating over the file's; none where neither has one
    marks = engine.albums.marks([str(p) for p in (embedded, darktable, lightroom, bomb)])
    assert [m.rating for m in marks.values()] == [5, 2, 1, 0]
    # a rating given here wins over the file's, now and when the file is read again
    Image.open(photos[4]).save(rated_here, xmp=packet(4, ("edited",)).encode())
    engine.updates.index()
    assert engine.albums.marks([str(rated_here)])[str(rated_here)].rating == 2
    assert {r.path for r in engine.search.run([], k=20, filters=Filters(min_rating=5))} == {
        str(embedded)}
