"""SIGKILLs at random points in a `mmrag watch` process and `mmrag index` runs on one library
while the folder changes: nothing committed lost or duplicated, and every process answers as
exact search over SQLite does. (`python tests/fault_injection.py --kills 100` runs the long
campaign.)"""

from __future__ import annotations

from fault_injection import campaign, prepare
from conftest import coco_photos


def test_random_kills_in_two_processes_lose_and_duplicate_nothing(tmp_path, tiny_model):
    home, folder = prepare(tmp_path, *tiny_model)
    result = campaign(home, folder, coco_photos()[30:], kills=8, seed=7, index_kills=3)
    assert result["index_killed_mid_run"] >= 3 and result["watch_killed"] >= 1
    assert result["checks"] == result["kills"] + 1 >= 9
