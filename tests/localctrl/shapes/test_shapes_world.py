"""The shapes world: deterministic scenes, exact ground truth, held-out combinations, the manifest and `data shapes`."""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cli import app
from localctrl.data.manifest import MANIFEST, DatasetError, read_manifest
from localctrl.shapes.dataset import write_shapes_dataset
from localctrl.shapes.render import BACKDROP, DEPTH_FAR, DEPTH_NEAR, ground_depth, render
from localctrl.shapes.scene import (
    BACKGROUNDS,
    COLOURS,
    HELD_OUT,
    SHAPES,
    SPLITS,
    Scene,
    ShapeObject,
    WorldConfig,
    sample_scene,
    split_scenes,
)

SIZE = 64
SEED = 7


# ----------------------------------------------------------------------------- helpers (independent of the library)


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def rect(x0: int, y0: int, x1: int, y1: int, size: int = SIZE) -> np.ndarray:
    """Boolean mask of pixels x0..x1, y0..y1 (inclusive)."""
    mask = np.zeros((size, size), dtype=bool)
    mask[y0 : y1 + 1, x0 : x1 + 1] = True
    return mask


def outline(x0: int, y0: int, x1: int, y1: int, size: int = SIZE) -> np.ndarray:
    """The 1-px ring of rect(x0, y0, x1, y1)."""
    ring = rect(x0, y0, x1, y1, size)
    ring[y0 + 1 : y1, x0 + 1 : x1] = False
    return ring


def square(cx: float, cy: float, side: float, layer: int, colour: str = "red") -> ShapeObject:
    return ShapeObject(shape="square", colour=colour, cx=cx, cy=cy, size=side, layer=layer)


def scene_of(*objects: ShapeObject, background: str = "grey", gradient: bool = False) -> Scene:
    return Scene(background=background, gradient=gradient, objects=tuple(objects), split="train")


def reference_edges(instance: np.ndarray) -> np.ndarray:
    """Object pixels with a 4-neighbour (inside the image) of a lower layer, by explicit shifted comparisons."""
    lower = np.zeros(instance.shape, dtype=bool)
    inst = instance.astype(int)
    lower[1:, :] |= inst[:-1, :] < inst[1:, :]  # neighbour above
    lower[:-1, :] |= inst[1:, :] < inst[:-1, :]  # neighbour below
    lower[:, 1:] |= inst[:, :-1] < inst[:, 1:]  # neighbour left
    lower[:, :-1] |= inst[:, 1:] < inst[:, :-1]  # neighbour right
    return lower & (inst > 0)


def pixel_inside(obj: ShapeObject, x: int, y: int) -> bool:
    """Whether pixel (x, y)'s centre lies in `obj`, written out pixel by pixel."""
    px, py, half = x + 0.5, y + 0.5, obj.size / 2
    if obj.shape == "circle":
        return (px - obj.cx) ** 2 + (py - obj.cy) ** 2 <= half * half
    if obj.shape == "square":
        return obj.cx - half <= px <= obj.cx + half and obj.cy - half <= py <= obj.cy + half
    apex_y = obj.cy - half  # triangle: apex at the top, base (width = size) at the bottom
    below = py - apex_y
    return 0 <= below and py <= obj.cy + half and abs(px - obj.cx) <= below / 2


def pixel_region(obj: ShapeObject, size: int = SIZE) -> np.ndarray:
    return np.array([[pixel_inside(obj, x, y) for x in range(size)] for y in range(size)])


def assert_consistent(scene: Scene, rendered, size: int) -> None:
    """The relations every render must satisfy, whatever the scene."""
    instance, semantic, depth = rendered.instance, rendered.semantic, rendered.depth
    for array in (instance, semantic, depth, rendered.edges):
        assert array.shape == (size, size) and array.dtype == np.uint8
    assert rendered.image.shape == (size, size, 3) and rendered.image.dtype == np.uint8
    background = instance == 0
    assert not semantic[background].any() and not rendered.edges[background].any()
    ground = ground_depth(size)  # a card standing lower is nearer: brighter
    assert ground[0] == DEPTH_FAR and ground[-1] == DEPTH_NEAR and (np.diff(ground.astype(int)) >= 0).all()
    assert (depth[background] == BACKDROP).all()
    layers = sorted(obj.layer for obj in scene.objects)
    assert set(np.unique(instance)) <= {0, *layers}
    assert len(rendered.object_masks) == len(scene.objects)
    for obj in scene.objects:
        own = instance == obj.layer
        assert (semantic[own] == 1 + SHAPES.index(obj.shape)).all()
        if own.any():  # a card standing on the ground at its lowest visible row has the ground's depth there
            assert (depth[own] == ground[np.nonzero(own.any(axis=1))[0].max()]).all()
        assert (rendered.image[own] == COLOURS[obj.colour]).all()
        assert np.array_equal(rendered.object_masks[layers.index(obj.layer)], own.astype(np.uint8) * 255)
        # An object's visible pixels are its own region, minus what higher layers cover.
        above = np.zeros((size, size), dtype=bool)
        for other in scene.objects:
            if other.layer > obj.layer:
                above |= other.region(size)
        assert np.array_equal(own, obj.region(size) & ~above)
    assert set(np.unique(rendered.edges)) <= {0, 255}
    assert np.array_equal(rendered.edges > 0, reference_edges(instance))


# ----------------------------------------------------------------------------- datasets written once per module


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """n=300 (two chunks) with the pool and without, n=60 twice with one seed and once with another."""
    root = tmp_path_factory.mktemp("shapes")
    return {
        "pool": write_shapes_dataset(root / "pool", n=300, seed=SEED, workers=2),
        "serial": write_shapes_dataset(root / "serial", n=300, seed=SEED, workers=1),
        "a": write_shapes_dataset(root / "a", n=60, seed=3),
        "b": write_shapes_dataset(root / "b", n=60, seed=3),
        "other": write_shapes_dataset(root / "other", n=60, seed=4),
    }


def manifest_rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / MANIFEST).read_text().splitlines()]


# ----------------------------------------------------------------------------- 1. determinism


def test_same_seed_gives_byte_identical_folders(written):
    a, b = files_of(written["a"]), files_of(written["b"])
    assert sorted(a) == sorted(b)
    assert {"manifest.jsonl", "world.json", "images/000000.png", "edges/000059.png", "masks/000000_1.png"} <= set(a)
    assert not any(name.endswith(".tmp") for name in a)
    for name in a:
        assert a[name] == b[name], name


def test_one_worker_and_two_workers_write_the_same_bytes(written):
    pool, serial = files_of(written["pool"]), files_of(written["serial"])
    assert sorted(pool) == sorted(serial)
    assert "images/000299.png" in pool and "images/000300.png" not in pool  # the second chunk was written
    for name in pool:
        assert pool[name] == serial[name], name
    assert [row["id"] for row in manifest_rows(written["pool"])] == [f"{i:06d}" for i in range(300)]


def test_another_seed_gives_another_world(written):
    assert (written["a"] / MANIFEST).read_bytes() != (written["other"] / MANIFEST).read_bytes()
    assert (written["a"] / "images/000000.png").read_bytes() != (written["other"] / "images/000000.png").read_bytes()
    world = json.loads((written["other"] / "world.json").read_text())
    assert world["seed"] == 4 and world["n"] == 60 and world["config"]["size"] == SIZE
    assert sorted(map(tuple, world["config"]["held_out"])) == sorted(HELD_OUT)


def test_written_pngs_are_the_render_of_the_sampled_scene(written):
    folder = written["pool"]
    rows = manifest_rows(folder)
    for index in (0, 1, 150, 299):
        row = rows[index]
        scene = sample_scene(SEED, index)
        rendered = render(scene, SIZE)
        assert row["caption"] == scene.caption and row["split"] == scene.split
        assert np.array_equal(np.asarray(Image.open(folder / row["image"])), rendered.image)
        for key, array in (("edges", rendered.edges), ("seg", rendered.semantic), ("depth", rendered.depth), ("instance", rendered.instance)):
            assert np.array_equal(np.asarray(Image.open(folder / row["conditions"][key])), array), key
        assert sorted(row["masks"]) == [f"object{k}" for k in range(1, len(scene.objects) + 1)]
        for k, mask in enumerate(rendered.object_masks, start=1):
            assert np.array_equal(np.asarray(Image.open(folder / row["masks"][f"object{k}"])), mask)


# ----------------------------------------------------------------------------- 2. edges


def test_edges_of_a_square_are_its_one_pixel_outline():
    # side 10 centred on (20, 30): pixel centres 15.5..24.5 and 25.5..34.5 are inside → pixels x 15..24, y 25..34
    rendered = render(scene_of(square(20.0, 30.0, 10.0, layer=1)), SIZE)
    assert np.array_equal(rendered.instance > 0, rect(15, 25, 24, 34))
    assert np.array_equal(rendered.edges > 0, outline(15, 25, 24, 34))
    assert int((rendered.edges > 0).sum()) == 36
    assert set(np.unique(rendered.edges)) == {0, 255}


def test_image_borders_are_not_edges():
    # a square in the top-left corner, pixels 0..9: only its inner sides (x = 9, y = 9) are boundary
    rendered = render(scene_of(square(5.0, 5.0, 10.0, layer=1)), SIZE)
    assert np.array_equal(rendered.instance > 0, rect(0, 0, 9, 9))
    expected = rect(9, 0, 9, 9) | rect(0, 9, 9, 9)
    assert np.array_equal(rendered.edges > 0, expected)


def test_only_the_top_object_is_edged_at_an_occlusion():
    bottom = square(20.0, 20.0, 20.0, layer=1, colour="red")  # pixels 10..29
    top = square(30.0, 30.0, 20.0, layer=2, colour="blue")  # pixels 20..39, on top
    rendered = render(scene_of(bottom, top), SIZE)
    top_pixels = rect(20, 20, 39, 39)
    assert np.array_equal(rendered.instance == 2, top_pixels)
    assert np.array_equal(rendered.instance == 1, rect(10, 10, 29, 29) & ~top_pixels)
    expected = outline(20, 20, 39, 39) | (outline(10, 10, 29, 29) & ~top_pixels)
    edges = rendered.edges > 0
    assert np.array_equal(edges, expected)
    assert edges[25, 20] and not edges[25, 19]  # occlusion seam, left side of the top square: top marked only
    assert edges[20, 25] and not edges[19, 25]  # and its upper side
    assert (edges <= (rendered.instance > 0)).all()


def erode(mask: np.ndarray) -> np.ndarray:
    """Pixels of `mask` whose in-image 4-neighbours are all in `mask` (outside the image counts as inside)."""
    kept = mask.copy()
    kept[1:, :] &= mask[:-1, :]
    kept[:-1, :] &= mask[1:, :]
    kept[:, 1:] &= mask[:, :-1]
    kept[:, :-1] &= mask[:, 1:]
    return kept


def test_overlapping_circle_edges_are_the_visible_outlines():
    bottom = ShapeObject("circle", "green", 30.3, 28.7, 26.0, 1)
    top = ShapeObject("circle", "purple", 41.6, 36.2, 21.0, 2)
    rendered = render(scene_of(bottom, top), SIZE)
    top_region = pixel_region(top)
    bottom_visible = pixel_region(bottom) & ~top_region
    assert (pixel_region(bottom) & top_region).any() and bottom_visible.any()
    # the top circle: its whole outline; the bottom one: only where it meets the background
    expected = (top_region & ~erode(top_region)) | (bottom_visible & ~erode(bottom_visible | top_region))
    edges = rendered.edges > 0
    assert np.array_equal(edges, expected)
    assert np.array_equal(edges, reference_edges(rendered.instance))
    assert not (edges & (rendered.instance == 1) & erode(rendered.instance > 0)).any()  # bottom: no seam edge


# ----------------------------------------------------------------------------- 3. seg / instance / depth / image, known answer


def test_circle_under_triangle_known_answer():
    circle = ShapeObject("circle", "red", 24.0, 30.0, 24.0, 1)
    triangle = ShapeObject("triangle", "orange", 38.0, 30.0, 24.0, 2)
    scene = scene_of(circle, triangle, background="white")
    rendered = render(scene, SIZE)

    tri = pixel_region(triangle)
    circ = pixel_region(circle) & ~tri
    assert (pixel_region(circle) & tri).any()  # they really overlap
    assert np.array_equal(rendered.instance, np.where(tri, 2, np.where(circ, 1, 0)))
    assert np.array_equal(rendered.semantic, np.where(tri, 3, np.where(circ, 1, 0)))
    # Both stand on row 41 (the circle's lowest visible pixels are x 21-25 there): disparity round(64 + 191·41/63)
    assert np.array_equal(rendered.depth, np.where(tri | circ, 188, 0))
    assert np.array_equal(rendered.object_masks[0], circ.astype(np.uint8) * 255)
    assert np.array_equal(rendered.object_masks[1], tri.astype(np.uint8) * 255)
    expected_image = np.empty((SIZE, SIZE, 3), dtype=np.uint8)
    expected_image[:] = BACKGROUNDS["white"]
    expected_image[circ] = COLOURS["red"]
    expected_image[tri] = COLOURS["orange"]
    assert np.array_equal(rendered.image, expected_image)

    # spot checks worked out by hand
    assert rendered.instance[30, 24] == 1 and rendered.semantic[30, 24] == 1 and rendered.depth[30, 24] == 188
    assert rendered.instance[30, 34] == 2 and rendered.semantic[30, 34] == 3 and rendered.depth[30, 34] == 188
    assert rendered.instance[30, 11] == 0 and rendered.instance[30, 12] == 1  # radius 12: 11.5 is 12.5 from 24, 12.5 is 11.5
    # apex at y = 18: row 18's centre is 0.5 below it (half-width 0.25 < 0.5), row 19's 1.5 (half-width 0.75)
    assert rendered.instance[18, 38] == 0 and rendered.instance[19, 38] == 2
    assert rendered.instance[2, 2] == 0 and tuple(rendered.image[2, 2]) == BACKGROUNDS["white"] and rendered.depth[2, 2] == 0
    assert tuple(rendered.image[30, 24]) == COLOURS["red"] and tuple(rendered.image[30, 34]) == COLOURS["orange"]


def test_gradient_background_runs_from_top_to_bottom():
    rendered = render(scene_of(square(50.0, 50.0, 10.0, 1), background="grey", gradient=True), SIZE)
    column = rendered.image[:, 2, 0].astype(int)
    assert column[0] == 128 + 40 and column[-1] == 128 - 40
    assert (np.diff(column) <= 0).all()
    assert (rendered.instance[:, 2] == 0).all()


# ----------------------------------------------------------------------------- 4. random scenes


def test_random_scenes_are_consistent_and_every_object_is_visible():
    for index in range(200):
        scene = sample_scene(SEED, index)
        rendered = render(scene, SIZE)
        assert 1 <= len(scene.objects) <= 2
        assert sorted(obj.layer for obj in scene.objects) == list(range(1, len(scene.objects) + 1))
        assert_consistent(scene, rendered, SIZE)
        for obj, mask in zip(sorted(scene.objects, key=lambda o: o.layer), rendered.object_masks):
            assert mask.any(), (index, obj)
            # no overlap by default: every object is fully visible
            assert int((rendered.instance == obj.layer).sum()) == int(obj.region(SIZE).sum()), (index, obj)


def test_random_overlapping_scenes_are_consistent():
    config = WorldConfig(size=48, object_count_probs=WorldConfig.count_probs(3), allow_overlap=True)
    overlapped = 0
    for index in range(100):
        scene = sample_scene(SEED, index, config)
        rendered = render(scene, config.size)
        assert_consistent(scene, rendered, config.size)
        total = sum(int(obj.region(config.size).sum()) for obj in scene.objects)
        overlapped += int((rendered.instance > 0).sum()) < total
    assert overlapped > 0  # overlap really happens, so the occlusion rules were exercised


# ----------------------------------------------------------------------------- 5. held-out combinations


def test_held_out_combinations_only_in_val_and_test():
    seen: dict[str, Counter] = {split: Counter() for split in SPLITS}
    for index in range(2000):
        scene = sample_scene(0, index)
        seen[scene.split].update(scene.combinations)
        if scene.split == "train":
            assert not scene.has_held_out(), (index, scene)
    assert not set(seen["train"]) & HELD_OUT
    evaluation = seen["val"] + seen["test"]
    for combination in HELD_OUT:
        assert evaluation[combination] >= 1, combination
    # never held out entirely: every other combination is trained on
    everything = {(c, s, b) for c in COLOURS for s in SHAPES for b in BACKGROUNDS}
    assert set(seen["train"]) == everything - HELD_OUT


def test_manifest_heldout_flag_matches_the_scene(written):
    rows = manifest_rows(written["pool"])
    flags = []
    for index, row in enumerate(rows):
        record = row["scene"]
        combinations = {(o["colour"], o["shape"], record["background"]) for o in record["objects"]}
        expected = bool(combinations & HELD_OUT)
        assert row["heldout"] is expected, row
        assert expected == sample_scene(SEED, index).has_held_out()
        if row["split"] == "train":
            assert not row["heldout"], row
        flags.append(expected)
    assert any(flags) and not all(flags)


# ----------------------------------------------------------------------------- 6. captions


@pytest.mark.parametrize(
    ("scene", "caption"),
    [
        (scene_of(ShapeObject("square", "orange", 30, 30, 12, 1), background="black"), "an orange square on a black background"),
        (scene_of(ShapeObject("circle", "red", 30, 30, 12, 1), gradient=True), "a red circle on a grey gradient background"),
        (
            scene_of(ShapeObject("circle", "orange", 45, 30, 12, 1), ShapeObject("triangle", "yellow", 15, 30, 12, 2), background="black", gradient=True),
            "a yellow triangle and an orange circle on a black gradient background",
        ),
        (
            scene_of(
                ShapeObject("triangle", "green", 52, 20, 12, 1),
                ShapeObject("circle", "red", 10, 50, 12, 2),
                ShapeObject("square", "blue", 31, 10, 12, 3),
                background="white",
            ),
            "a red circle, a blue square and a green triangle on a white background",
        ),
    ],
)
def test_caption_known_answers(scene, caption):
    assert scene.caption == caption


def test_random_captions_name_objects_left_to_right():
    for index in range(200):
        scene = sample_scene(SEED, index)
        ordered = sorted(scene.objects, key=lambda o: o.cx)
        caption = scene.caption
        positions = [caption.index(f"{o.colour} {o.shape}") for o in ordered]
        if len({(o.colour, o.shape) for o in ordered}) == len(ordered):
            assert positions == sorted(positions), caption
        assert caption.endswith(f"on a {scene.background}{' gradient' if scene.gradient else ''} background")


# ----------------------------------------------------------------------------- 7. splits


def test_splits_are_recorded_and_roughly_follow_split_probs(written):
    counts = Counter(row["split"] for row in manifest_rows(written["pool"]))
    assert set(counts) == set(SPLITS)
    assert 0.7 * 300 <= counts["train"] <= 0.9 * 300
    assert 0.04 * 300 <= counts["val"] <= 0.17 * 300
    assert 0.04 * 300 <= counts["test"] <= 0.17 * 300


def test_split_probs_are_honoured():
    config = WorldConfig(split_probs=(0.5, 0.2, 0.3))
    counts = Counter(sample_scene(1, index, config).split for index in range(1000))
    assert 430 <= counts["train"] <= 570
    assert 140 <= counts["val"] <= 260
    assert 230 <= counts["test"] <= 370


# ----------------------------------------------------------------------------- 8. read_manifest


@pytest.fixture
def small(tmp_path):
    return write_shapes_dataset(tmp_path / "small", n=8, seed=SEED, workers=1)


def rewrite_line(folder: Path, number: int, text: str) -> Path:
    path = folder / MANIFEST
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")
    return path


def test_read_manifest_reads_every_item(small):
    items = read_manifest(small)
    assert [item.id for item in items] == [f"{i:06d}" for i in range(8)]
    for item in items:
        assert item.image.is_file()
        assert sorted(item.conditions) == ["depth", "edges", "instance", "seg"]
        assert item.masks and all(path.is_file() for path in item.masks.values())
        assert {"scene", "heldout"} <= set(item.extra)


def test_read_manifest_names_file_and_line_of_a_missing_field(small):
    row = manifest_rows(small)[1]
    del row["caption"]
    path = rewrite_line(small, 2, json.dumps(row))
    with pytest.raises(DatasetError) as error:
        read_manifest(small)
    assert f"{path}:2" in str(error.value) and "caption" in str(error.value)


def test_read_manifest_names_file_and_line_of_invalid_json(small):
    path = rewrite_line(small, 3, '{"id": "000002", "image": ')
    with pytest.raises(DatasetError) as error:
        read_manifest(small)
    assert f"{path}:3" in str(error.value) and "JSON" in str(error.value)


def test_read_manifest_names_the_field_and_path_of_a_deleted_png(small):
    row = manifest_rows(small)[3]
    missing = small / row["conditions"]["edges"]
    missing.unlink()
    with pytest.raises(DatasetError) as error:
        read_manifest(small)
    message = str(error.value)
    assert f"{small / MANIFEST}:4" in message and "conditions.edges" in message and str(missing) in message
    assert len(read_manifest(small, check_files=False)) == 8  # the check can be skipped


def test_read_manifest_names_a_deleted_mask(small):
    row = manifest_rows(small)[0]
    missing = small / row["masks"]["object1"]
    missing.unlink()
    with pytest.raises(DatasetError, match="masks.object1") as error:
        read_manifest(small)
    assert str(missing) in str(error.value)


def test_read_manifest_without_a_manifest(tmp_path):
    with pytest.raises(DatasetError, match=MANIFEST):
        read_manifest(tmp_path)


def test_read_manifest_filters_one_split(written):
    rows = manifest_rows(written["pool"])
    for split in SPLITS:
        items = read_manifest(written["pool"], split=split)
        assert items and all(item.split == split for item in items)
        assert [item.id for item in items] == [row["id"] for row in rows if row["split"] == split]


# ----------------------------------------------------------------------------- 9. WorldConfig validation


@pytest.mark.parametrize("size", [16, 31, 257, 300])
def test_world_size_out_of_range_is_refused(size):
    with pytest.raises(ValueError, match="size"):
        WorldConfig(size=size)


def test_world_size_bounds_are_accepted():
    assert WorldConfig(size=32).size == 32 and WorldConfig(size=256).size == 256


@pytest.mark.parametrize(
    "settings",
    [
        {"split_probs": (0.8, 0.1, 0.05)},
        {"split_probs": (0.9, 0.2, -0.1)},
        {"object_count_probs": (0.5, 0.6)},
        {"object_count_probs": (1.2, -0.2)},
    ],
)
def test_probabilities_must_sum_to_one(settings):
    with pytest.raises(ValueError, match=next(iter(settings))):
        WorldConfig(**settings)


@pytest.mark.parametrize("max_objects", [1, 2, 3, 6])
def test_count_probs_are_valid(max_objects):
    probs = WorldConfig.count_probs(max_objects)
    assert len(probs) == max_objects and abs(sum(probs) - 1) < 1e-9
    config = WorldConfig(object_count_probs=probs)
    counts = {len(sample_scene(0, index, config).objects) for index in range(100)}
    assert max(counts) <= max_objects


# ----------------------------------------------------------------------------- 10. the CLI


def test_cli_data_shapes_writes_the_dataset(tmp_path):
    out = tmp_path / "world"
    result = CliRunner().invoke(app, ["data", "shapes", "--out", str(out), "-n", "40", "--seed", "3"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    rows = manifest_rows(out)
    assert len(rows) == 40
    assert len(read_manifest(out)) == 40
    assert str(out.resolve()) in result.output
    assert "Wrote 40 items" in result.output
    assert json.loads((out / "world.json").read_text())["seed"] == 3
    # the same world as the library writes for the same arguments
    assert [row["caption"] for row in rows] == [sample_scene(3, index).caption for index in range(40)]


def test_an_unknown_or_empty_split_is_an_error_not_an_endless_search():
    with pytest.raises(ValueError, match="no split 'validation'; its splits are train, val, test"):
        split_scenes(0, "validation", 4)
    with pytest.raises(ValueError, match="split 'val' has probability 0"):
        split_scenes(0, "val", 4, WorldConfig(split_probs=(1.0, 0.0, 0.0)))
