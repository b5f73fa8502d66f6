import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from localctrl.data.manifest import read_manifest
from localctrl.data.prepare import prepare_dataset, split_of, stable_id


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


def test_coco_captions_json_takes_each_images_first_caption(source, tmp_path):
    folder, _ = source
    coco = tmp_path / "captions_val2017.json"
    coco.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.jpg"}],
                                "annotations": [{"id": 9, "image_id": 1, "caption": "later"}, {"id": 3, "image_id": 1, "caption": " first "},
                                                {"id": 5, "image_id": 2, "caption": "bee"}]}))
    prepare_dataset(folder, coco, tmp_path / "out", size=16)
    assert {item.caption for item in read_manifest(tmp_path / "out")} == {"first", "bee"}


def test_captions_beside_the_images_as_img2dataset_writes_them(source, tmp_path):
    folder, _ = source
    (folder / "a.txt").write_text("from a sidecar\n")
    (folder / "sub" / "c.txt").write_text("another sidecar")
    report = prepare_dataset(folder, None, tmp_path / "out", size=16)
    assert report.written == 2
    assert sorted(item.caption for item in read_manifest(tmp_path / "out")) == ["another sidecar", "from a sidecar"]


def test_a_hugging_face_dataset_on_disk_is_prepared_and_its_corrupt_rows_reported(tmp_path):
    import datasets

    images = [Image.fromarray(np.full((20, 30, 3), value, np.uint8)) for value in (10, 200)]
    rows = {"image": [*images, None], "captions": [["one", "uno"], ["two"], ["broken"]], "image_id": [42, 7, 3]}
    table = datasets.Dataset.from_dict(rows, features=datasets.Features({"image": datasets.Image(),
                                                                        "captions": datasets.Sequence(datasets.Value("string")),
                                                                        "image_id": datasets.Value("int64")}))
    corrupt = {"bytes": b"\x89PNG not really", "path": None}
    table = table.cast_column("image", datasets.Image(decode=False)).map(lambda row, i: {"image": row["image"] if i < 2 else corrupt},
                                                                        with_indices=True)
    datasets.DatasetDict({"validation": table, "train": table}).save_to_disk(tmp_path / "hf")
    from localctrl.data.sources import hf_dataset_items

    with pytest.raises(ValueError, match="splits validation, train: choose one"):
        hf_dataset_items(tmp_path / "hf", caption_column="captions")
    with pytest.raises(ValueError, match="no column 'caption'; columns are image, captions, image_id"):
        hf_dataset_items(tmp_path / "hf", split="validation")
    items = hf_dataset_items(tmp_path / "hf", caption_column="captions", split="validation", id_column="image_id")
    report = prepare_dataset(items, None, tmp_path / "out", size=16)
    assert report.written == 2 and [s["file"] for s in report.skipped] == [f"{tmp_path / 'hf'} [validation/3]"]
    manifest = {item.caption: item for item in read_manifest(tmp_path / "out")}
    assert set(manifest) == {"one", "two"}
    assert np.asarray(Image.open(manifest["two"].image)).tolist() == np.full((16, 16, 3), 200, np.uint8).tolist()


def test_a_dataset_localctrl_wrote_refuses_paths_outside_it_a_hand_made_one_may_name_them(tmp_path):
    from localctrl.data.manifest import DatasetError, read_manifest, write_manifest
    from localctrl.shapes.dataset import write_shapes_dataset

    folder = write_shapes_dataset(tmp_path / "world", 3, seed=0, workers=1)
    (tmp_path / "outside.png").write_bytes((folder / "images" / "000000.png").read_bytes())
    manifest = (folder / "manifest.jsonl").read_text()
    (folder / "manifest.jsonl").write_text(manifest.replace('"image":"images/000000.png"', '"image":"../outside.png"'))
    with pytest.raises(DatasetError, match="field image names .*outside.png, outside the dataset folder"):
        read_manifest(folder)
    assert len(read_manifest(folder, strict=False)) == 3
    hand_made = tmp_path / "hand-made"
    hand_made.mkdir()
    write_manifest(hand_made, [{"id": "a", "image": str(tmp_path / "outside.png"), "caption": "x", "split": "train"}])
    assert read_manifest(hand_made)[0].image == tmp_path / "outside.png"


def test_a_depth_map_the_dataset_ships_is_taken_cropped_and_min_max_normalised(tmp_path):
    """MultiGen-20M's `control_depth`: the condition ControlNet++ both conditions on and measures against."""
    import datasets

    ramp = np.tile(np.linspace(40, 120, 24).astype(np.uint8), (16, 1))  # 24×16, values 40-120
    rows = {"image": [Image.fromarray(np.full((16, 24, 3), 90, np.uint8))], "text": ["a ramp"],
            "control_depth": [Image.fromarray(np.stack([ramp] * 3, axis=-1))]}
    features = datasets.Features({"image": datasets.Image(), "text": datasets.Value("string"), "control_depth": datasets.Image()})
    datasets.DatasetDict({"validation": datasets.Dataset.from_dict(rows, features=features)}).save_to_disk(tmp_path / "hf")
    from localctrl.data.sources import hf_dataset_items

    items = hf_dataset_items(tmp_path / "hf", caption_column="text", condition_columns={"depth": "control_depth"})
    report = prepare_dataset(items, None, tmp_path / "out", size=16, conditions=("canny",))  # no network is needed
    assert report.written == 1 and report.condition_models == {"depth": "the dataset's own"}
    item = read_manifest(tmp_path / "out")[0]
    depth = np.asarray(Image.open(item.conditions["depth"]))
    assert depth.shape == (16, 16) and depth.min() == 0 and depth.max() == 255  # the centre square, stretched to 0-255
    assert (np.diff(depth.astype(int), axis=1) >= 0).all()  # still the ramp, left to right
    with pytest.raises(ValueError, match="no column 'control_seg'"):
        hf_dataset_items(tmp_path / "hf", caption_column="text", condition_columns={"seg": "control_seg"})


def test_stretch_fits_the_whole_image_as_controlnetpp_resizes_it(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    array = np.zeros((20, 40, 3), np.uint8)
    array[:, :10] = 255  # a white band on the left quarter: a centre crop cuts it away, stretching keeps it
    Image.fromarray(array).save(folder / "wide.png")
    (tmp_path / "captions.csv").write_text("file,caption\nwide.png,a band\n")
    for fit, band in (("crop", False), ("stretch", True)):
        prepare_dataset(folder, tmp_path / "captions.csv", tmp_path / fit, size=16, fit=fit)
        image = np.asarray(Image.open(read_manifest(tmp_path / fit)[0].image))
        assert image.shape == (16, 16, 3) and bool(image[:, 0].mean() > 200) == band, fit


def ade20k_dataset(folder, annotation: np.ndarray):
    """A Captioned_ADE20K-layout split holding one row with `annotation` as its seg_map."""
    import datasets

    h, w = annotation.shape[:2]
    rows = {"image": [Image.fromarray(np.full((h, w, 3), 90, np.uint8))], "prompt": ["a room"],
            "seg_map": [Image.fromarray(annotation)]}
    features = datasets.Features({"image": datasets.Image(), "prompt": datasets.Value("string"), "seg_map": datasets.Image()})
    datasets.DatasetDict({"validation": datasets.Dataset.from_dict(rows, features=features)}).save_to_disk(folder)
    return folder


def test_an_ade20k_label_map_the_dataset_ships_is_resized_nearest_and_reduced_as_mmseg_reads_it(tmp_path):
    """Captioned_ADE20K's `seg_map`: 0 is "other", 1-150 the classes; mmseg's reduce_zero_label makes them 255, 0-149."""
    from localctrl.data.conditions import IGNORE_LABEL, manifest_condition, palette
    from localctrl.data.sources import hf_dataset_items

    annotation = np.zeros((20, 40), np.uint8)  # "other", then classes 1, 7 and 150 in vertical bands
    annotation[:, 10:20], annotation[:, 20:30], annotation[:, 30:] = 1, 7, 150
    items = hf_dataset_items(ade20k_dataset(tmp_path / "hf", annotation), caption_column="prompt",
                             condition_columns={"seg": "seg_map"})
    report = prepare_dataset(items, None, tmp_path / "out", size=16, conditions=("seg",), fit="stretch")  # no UperNet needed
    assert report.written == 1 and report.condition_models == {"seg": "the dataset's own"}
    item = read_manifest(tmp_path / "out")[0]
    labels = np.array(Image.open(item.conditions["seg"]))
    assert labels.shape == (16, 16) and set(np.unique(labels)) == {IGNORE_LABEL, 0, 6, 149}  # nearest: no blended labels
    assert (labels[:, 0] == IGNORE_LABEL).all() and (labels[:, -1] == 149).all()  # stretched: every band kept
    assert item.extra["seg_palette"] == "ade20k"
    coloured = manifest_condition("seg", labels, "ade20k")  # what the adapters see: the palette, "other" black
    assert torch.equal(coloured[:, 0, 0], torch.zeros(3)) and torch.allclose(coloured[:, 0, -1], palette("ade20k")[149])


def test_a_shipped_seg_column_that_holds_colours_or_unknown_classes_fails_before_any_item(tmp_path):
    from localctrl.data.sources import hf_dataset_items
    from localctrl.errors import InputError

    for name, annotation, expected in (("rgb", np.zeros((8, 8, 3), np.uint8), "one class per pixel"),
                                       ("big", np.full((8, 8), 151, np.uint8), "classes 0-150, not 151")):
        items = hf_dataset_items(ade20k_dataset(tmp_path / name, annotation), caption_column="prompt",
                                 condition_columns={"seg": "seg_map"})
        with pytest.raises(InputError, match=expected):
            prepare_dataset(items, None, tmp_path / f"out-{name}", size=8, conditions=("seg",))
        assert not (tmp_path / f"out-{name}" / "manifest.jsonl").exists()
