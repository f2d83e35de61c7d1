"""A burst of files copied into a watched folder is indexed once, in coalesced runs.
(`python tests/storm.py --files 10000` runs the full-size storm and prints time and RSS.)"""

from __future__ import annotations

from storm import make_variants, storm
from conftest import FLICKR

import pytest


def test_storm_of_copies_is_indexed_exactly_once(engine, tmp_path):
    sources = sorted((FLICKR / "images").glob("*.jpg"))
    if not sources:
        pytest.skip(f"shared photo data not found at {FLICKR}")
    make_variants(sources, 600, tmp_path / "staging")
    (tmp_path / "watched").mkdir()
    result = storm(engine, tmp_path / "staging", tmp_path / "watched", timeout=300)
    assert result["rows"] == result["distinct_paths"] == result["vectors"] == 600
    assert result["runs"] < 60  # coalesced into runs, not one per file
