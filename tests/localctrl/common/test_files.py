"""Atomic writes leave either the old file or the complete new one; unreadable images are errors naming the file."""

import numpy as np
import pytest

from localctrl.common.files import atomic, check_writable, read_image, read_rgb, write_png, write_text
from localctrl.errors import InputError


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = write_text(tmp_path / "sub" / "state.json", "old")
    with pytest.raises(RuntimeError), atomic(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and sorted(p.name for p in target.parent.iterdir()) == ["state.json"]
    write_text(target, "new")
    assert target.read_text() == "new" and len(list(target.parent.iterdir())) == 1


def test_png_round_trip_is_byte_reproducible(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    first, second = write_png(tmp_path / "a.png", array), write_png(tmp_path / "b.png", array)
    assert first.read_bytes() == second.read_bytes()
    assert np.array_equal(read_image(first), array)
    assert read_rgb(first).shape == (3, 8, 8) and read_image(first, "L").shape == (8, 8)


def test_an_unreadable_image_names_the_file(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(InputError, match="broken.png: not a readable image"):
        read_image(broken)
    with pytest.raises(InputError, match="missing.png: not a readable image"):
        read_image(tmp_path / "missing.png")


def test_recorded_files_are_checked_against_what_was_written(tmp_path):
    from localctrl.common.files import recorded_problem

    path = write_text(tmp_path / "scores.json", '{"f1": 0.5}', record=True)
    assert recorded_problem(path) is None
    path.write_text('{"f1": 0.9}')  # same size, other content
    assert "changed since it was written" in recorded_problem(path)
    write_text(tmp_path / "old.json", "{}")  # no record: written before records existed, or killed before it
    assert "has no record" in recorded_problem(tmp_path / "old.json")
    assert recorded_problem(tmp_path / "nothing.json") == "missing"


def test_a_truncated_or_changed_png_is_damaged(tmp_path):
    from localctrl.common.files import png_problem

    path = write_png(tmp_path / "a.png", np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    data = path.read_bytes()
    assert png_problem(path) is None and png_problem(tmp_path / "none.png") == "missing"
    (tmp_path / "short.png").write_bytes(data[:100])
    changed = bytearray(data)
    changed[len(data) // 2] ^= 0xFF
    (tmp_path / "changed.png").write_bytes(bytes(changed))
    assert png_problem(tmp_path / "short.png").startswith("damaged") and png_problem(tmp_path / "changed.png").startswith("damaged")


def test_temporaries_of_killed_writers_are_removed_and_live_ones_kept(tmp_path):
    import os

    from localctrl.common.files import remove_stray_temporaries

    dead = tmp_path / "images" / ".a.png.99999999-1.tmp"  # no such process
    live = tmp_path / "images" / f".b.png.{os.getpid()}-1.tmp"
    for path in (dead, live):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"half")
    assert remove_stray_temporaries(tmp_path) == [dead] and not dead.exists() and live.exists()


def test_a_broken_checkpoint_or_state_file_is_named_with_what_to_do(tmp_path):
    from localctrl.common.checkpoints import load_checkpoint
    from localctrl.common.files import read_json

    (tmp_path / "checkpoint.pt").write_bytes(b"torn")
    with pytest.raises(InputError, match="checkpoint.pt: not a readable checkpoint .*delete it"):
        load_checkpoint(tmp_path / "checkpoint.pt")
    (tmp_path / "state.json").write_text('{"run_id": ')
    with pytest.raises(InputError, match="state.json: this run state is not valid JSON"):
        read_json(tmp_path / "state.json", "run state")


def test_processes_checking_one_folder_at_once_do_not_trip_over_each_others_probe(tmp_path):
    # two bench processes on one --out check it at the same moment (test_bench_concurrency found the race)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        checked = list(pool.map(lambda _: check_writable(tmp_path / "out", "--out"), range(400)))
    assert checked == [tmp_path / "out"] * 400 and list((tmp_path / "out").iterdir()) == []
