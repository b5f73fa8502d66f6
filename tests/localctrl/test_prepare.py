import json

import cv2
import numpy as np
import pytest
from PIL import Image

from localctrl.datasets import read_manifest
from localctrl.prepare import prepare_dataset, split_of, stable_id


@pytest.fixture
def source(tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, (w, h) in {"a.png": (80, 48), "b.jpg": (40, 40), "sub/c.png": (33, 90)}.items():
        array = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        array[h // 4 : h // 2, w // 4 : w // 2] = 255
        Image.fromarray(array).save(folder / name)
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    captions = tmp_path / "captions.csv"
    captions.write_text("file,caption\na.png,a photo\nb.jpg,another\nsub/c.png,tall one\nbroken.png,bad\nmissing.png,gone\n")
    return folder, captions


def test_prepare_writes_a_manifest_dataset_and_reports_bad_images(source, tmp_path):
    folder, captions = source
    report = prepare_dataset(folder, captions, tmp_path / "out", size=32, conditions=("canny", "colour-grid"))
    assert report.written == 3 and report.reused == 0
    assert sorted(file_name(s["file"]) for s in report.skipped) == ["broken.png", "missing.png"]
    items = read_manifest(tmp_path / "out")
    assert len(items) == 3 and {item.caption for item in items} == {"a photo", "another", "tall one"}
    for item in items:
        image = np.asarray(Image.open(item.image))
        assert image.shape == (32, 32, 3)
        expected = cv2.Canny(image, 100, 200)
        assert np.array_equal(np.asarray(Image.open(item.conditions["canny"])), expected)
    assert json.loads((tmp_path / "out" / "prepare-report.json").read_text())["written"] == 3


def file_name(path: str) -> str:
    return path.split("/")[-1]


def test_a_rerun_reuses_finished_items_and_keeps_ids_and_splits(source, tmp_path):
    folder, captions = source
    prepare_dataset(folder, captions, tmp_path / "out", size=32)
    first = (tmp_path / "out" / "manifest.jsonl").read_bytes()
    again = prepare_dataset(folder, captions, tmp_path / "out", size=32)
    assert again.written == 0 and again.reused == 3
    assert (tmp_path / "out" / "manifest.jsonl").read_bytes() == first


def test_ids_and_splits_are_stable_and_seeded():
    assert stable_id("sub/c.png") == stable_id("sub/c.png") != stable_id("sub/d.png")
    splits = [split_of(f"item-{k}", 0, (0.8, 0.1, 0.1)) for k in range(2000)]
    assert 0.75 < splits.count("train") / 2000 < 0.85 and splits.count("test") > 100
    assert splits != [split_of(f"item-{k}", 1, (0.8, 0.1, 0.1)) for k in range(2000)]
