"""SIGKILL at random points while the folder changes: nothing committed lost or duplicated.
(`python tests/fault_injection.py --kills 100` runs the long campaign.)"""

from __future__ import annotations

from fault_injection import campaign, prepare
from conftest import coco_photos


def test_random_kills_lose_and_duplicate_nothing(tmp_path, tiny_model):
    home, folder = prepare(tmp_path, *tiny_model)
    result = campaign(home, folder, coco_photos()[30:], kills=8, seed=7)
    assert result["killed_mid_run"] >= 4  # most kills hit a running index, not a start-up
