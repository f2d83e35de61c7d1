"""Query understanding (domain/query_parser.py): a table of typed queries and what each
asks, with a fixed today (Friday 2026-12-04) and a library that knows some places, people
and cameras. The share parsed exactly is printed; every row must parse exactly."""

from __future__ import annotations

from datetime import date

import pytest

from mmrag_desktop.domain.query_parser import Vocabulary, date_range, understand

TODAY = date(2026, 12, 4)
KNOWN = Vocabulary(
    places=["Lisbon", "Portugal", "Paris", "France", "New York", "Nice", "Porto", "Jordan"],
    people=["Anna", "Ben", "Grandma Rose"],
    cameras=[("iPhone 12 Pro", "Apple"), ("iPhone SE", "Apple"), ("EOS 5D Mark IV", "Canon"),
             ("Pixel 7", "Google")],
    albums=["Summer trip", "Paris weekend"])

# query → the parts expected (those not named are empty / None)
TABLE = [
    ("Anna at the beach last summer",
     dict(text="at the beach", people=["Anna"], after="2026-06-01", before="2026-08-31")),
    ("receipts from March 2024", dict(text="receipts", after="2024-03-01", before="2024-03-31")),
    ("the sign that says exit in Lisbon", dict(text="the sign", says="exit", place="Lisbon")),
    ("videos of the dog from 2019",
     dict(text="the dog", media="video", after="2019-01-01", before="2019-12-31")),
    ("my favourite sunsets", dict(text="sunsets", favourites=True)),
    ("favorite dogs from 2019", dict(text="dogs", favourites=True, after="2019-01-01",
                                     before="2019-12-31")),
    ("5 star sunsets in Paris", dict(text="sunsets", rating=5, place="Paris")),
    ("beaches rated 4 or more", dict(text="beaches", rating=4)),
    ("three-star dinners", dict(text="dinners", rating=3)),
    ("a star in the sky", dict(text="a star in the sky")),
    ("Anna in the Summer trip album", dict(people=["Anna"], albums=["Summer trip"])),
    ("boats from the album Paris weekend", dict(text="boats", albums=["Paris weekend"])),
    ("summer trip", dict(text="summer trip")),
    ("dog in the snow yesterday", dict(text="dog in the snow", after="2026-12-03",
                                       before="2026-12-03")),
    ("cake two years ago", dict(text="cake", after="2024-01-01", before="2024-12-31")),
    ("Christmas tree at Christmas", dict(text="Christmas tree", after="2025-12-24",
                                         before="2025-12-26")),
    ("Anna and Ben in Paris", dict(people=["Anna", "Ben"], place="Paris")),
    ("beach -people", dict(text="beach", not_=["people"])),
    ("family dinner not Ben", dict(text="family dinner", not_=["Ben"])),
    ("taken with the iPhone", dict(camera=["iPhone 12 Pro", "iPhone SE"])),
    ("flowers shot on my Canon", dict(text="flowers", camera=["EOS 5D Mark IV"])),
    ("sunset with a Pixel 7", dict(text="sunset", camera=["Pixel 7"])),
    ('a receipt that says "Midnight Bakery"', dict(text="a receipt", says="Midnight Bakery")),
    ('"exit"', dict(says="exit")),
    ("photos of Grandma Rose", dict(media="photo", people=["Grandma Rose"])),
    ("snow in 2019", dict(text="snow", after="2019-01-01", before="2019-12-31")),
    ("concert since 2020", dict(text="concert", after="2020-01-01")),
    ("birthday before 2018", dict(text="birthday", before="2017-12-31")),
    ("hiking after 2021", dict(text="hiking", after="2022-01-01")),
    ("party until May 2022", dict(text="party", before="2022-05-31")),
    ("picnic in May", dict(text="picnic", after="2026-05-01", before="2026-05-31")),
    ("picnic in May 2023", dict(text="picnic", after="2023-05-01", before="2023-05-31")),
    ("things that may fall", dict(text="things that may fall")),
    ("march of the penguins", dict(text="march of the penguins")),
    ("skiing last winter", dict(text="skiing", after="2025-12-01", before="2026-02-28")),
    ("skiing in winter 2020", dict(text="skiing", after="2020-12-01", before="2021-02-28")),
    ("leaves in autumn 2023", dict(text="leaves", after="2023-09-01", before="2023-11-30")),
    ("leaves last fall", dict(text="leaves", after="2026-09-01", before="2026-11-30")),
    ("beach summer 2021", dict(text="beach", after="2021-06-01", before="2021-08-31")),
    ("fireworks at new year's eve 2022", dict(text="fireworks", after="2022-12-31",
                                              before="2022-12-31")),
    ("costumes at Halloween", dict(text="costumes", after="2026-10-31", before="2026-10-31")),
    ("dinner last week", dict(text="dinner", after="2026-11-23", before="2026-11-29")),
    ("whiteboard this week", dict(text="whiteboard", after="2026-11-30", before="2026-12-04")),
    ("garden last month", dict(text="garden", after="2026-11-01", before="2026-11-30")),
    ("garden this month", dict(text="garden", after="2026-12-01", before="2026-12-04")),
    ("trip last year", dict(text="trip", after="2025-01-01", before="2025-12-31")),
    ("trip this year", dict(text="trip", after="2026-01-01", before="2026-12-04")),
    ("cat today", dict(text="cat", after="2026-12-04", before="2026-12-04")),
    ("wedding 10 days ago", dict(text="wedding", after="2026-11-24", before="2026-11-24")),
    ("a whiteboard three months ago", dict(text="a whiteboard", after="2026-09-01",
                                           before="2026-09-30")),
    ("graduation on 2019-07-04", dict(text="graduation", after="2019-07-04",
                                      before="2019-07-04")),
    ("picnic on July 4, 2019", dict(text="picnic", after="2019-07-04", before="2019-07-04")),
    ("dinner on 4 July 2019", dict(text="dinner", after="2019-07-04", before="2019-07-04")),
    ("trams in Lisbon", dict(text="trams", place="Lisbon")),
    ("trams in lisbon", dict(text="trams", place="Lisbon")),
    ("Lisbon trams", dict(text="trams", place="Lisbon")),
    ("nice weather at the beach", dict(text="nice weather at the beach")),
    ("street food in New York", dict(text="street food", place="New York")),
    ("a castle in Scotland", dict(text="a castle in Scotland")),
    ("boats near Porto in 2018", dict(text="boats", place="Porto", after="2018-01-01",
                                      before="2018-12-31")),
    ("Anna", dict(people=["Anna"])),
    ("anna playing football", dict(text="playing football", people=["Anna"])),
    ("Annabel at school", dict(text="Annabel at school")),
    ("Ben without Anna", dict(people=["Ben"], not_=["Anna"])),
    ("videos", dict(media="video")),
    ("clips of the kids at the beach", dict(text="the kids at the beach", media="video")),
    ("pictures from Portugal", dict(media="photo", place="Portugal")),
    ("screenshot with the words \"error 404\"", dict(text="screenshot", says="error 404")),
    ("the shop sign which reads open", dict(text="the shop sign", says="open")),
    ("dogs -cats -snow", dict(text="dogs", not_=["cats", "snow"])),
    ("mountains with no people", dict(text="mountains", not_=["people"])),
    ("videos of Anna from last Christmas in Paris",
     dict(media="video", people=["Anna"], after="2025-12-24", before="2025-12-26",
          place="Paris")),
    ("receipts from the hardware shop", dict(text="receipts from the hardware shop")),
    ("taken with a Nikon", dict(text="taken with a Nikon")),
    ("a red car", dict(text="a red car")),
    ("team photo 2015", dict(text="team photo", after="2015-01-01", before="2015-12-31")),
]


def expected(parts: dict) -> dict:
    full = {"text": "", "after": None, "before": None, "place": "", "people": [],
            "camera": [], "media": None, "says": "", "not": [], "albums": [], "favourites": False,
            "rating": 0}
    return full | {("not" if k == "not_" else k): v for k, v in parts.items()}


def test_the_table_is_parsed_exactly():
    assert len(TABLE) >= 60
    wrong = []
    for query, parts in TABLE:
        got = understand(query, KNOWN, TODAY).as_dict()
        if got != expected(parts):
            wrong.append((query, {k: v for k, v in got.items() if v != expected(parts)[k]}))
    share = 1 - len(wrong) / len(TABLE)
    print(f"\nquery understanding: {len(TABLE) - len(wrong)} of {len(TABLE)} queries parsed "
          f"exactly ({share:.1%})")
    assert not wrong, "\n".join(f"{q!r}: {diff}" for q, diff in wrong)


@pytest.mark.parametrize("today,phrase,first,last", [
    (date(2026, 7, 15), "last summer", date(2025, 6, 1), date(2025, 8, 31)),
    (date(2026, 7, 15), "summer", date(2026, 6, 1), date(2026, 8, 31)),
    (date(2026, 1, 10), "this winter", date(2025, 12, 1), date(2026, 2, 28)),
    (date(2026, 1, 10), "last winter", date(2024, 12, 1), date(2025, 2, 28)),
    (date(2026, 12, 25), "christmas", date(2026, 12, 24), date(2026, 12, 26)),
    (date(2026, 12, 25), "last christmas", date(2025, 12, 24), date(2025, 12, 26)),
    (date(2026, 3, 1), "winter 2023", date(2023, 12, 1), date(2024, 2, 29)),
])
def test_seasons_and_holidays_count_back_from_today(today, phrase, first, last):
    assert date_range(phrase, today) == (first, last)


def test_each_part_names_the_words_it_came_from():
    found = understand("videos of Anna in Lisbon since 2020 taken with the iPhone not Ben",
                       KNOWN, TODAY)
    assert found.phrases == [("Not Ben", "not Ben"), ("Anna", "Anna"),
                             ("From 2020-01-01", "since 2020"), ("Videos", "videos of"),
                             ("Camera: iPhone", "taken with the iPhone"),
                             ("In Lisbon", "in Lisbon")]
    assert found.text == ""
