"""Atomic writes leave either the old file or the complete new one; unreadable images are errors naming the file."""

import numpy as np
import pytest

from localctrl.common.files import atomic, read_image, read_rgb, write_png, write_text
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
