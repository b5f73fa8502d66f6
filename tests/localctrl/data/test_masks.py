import math

import numpy as np
import pytest

from localctrl.data.masks import (
    MASK_KINDS,
    REFERENCE_MIN_AREA,
    box_holding,
    check_mask,
    empty_mask,
    full_mask,
    make_mask,
    object_mask,
    random_blob,
    random_box,
)

SEEDS = range(200)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def assert_binary_float32(mask: np.ndarray, shape: tuple[int, int]) -> None:
    assert mask.dtype == np.float32
    assert mask.shape == shape
    assert ((mask == 0) | (mask == 1)).all()


def assert_area_within(mask: np.ndarray, min_area: float, max_area: float) -> None:
    n = mask.size
    count = int(mask.sum())
    assert count >= math.ceil(min_area * n), (count, min_area * n)
    assert count <= max(math.floor(max_area * n), math.ceil(min_area * n)), (count, max_area * n)


def assert_single_rectangle(mask: np.ndarray) -> None:
    # The mask must equal its filled bounding box: all ones inside it, and nothing outside (counts agree).
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    inside = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    assert inside.all() and inside.size == mask.sum()


def test_reference_min_area_is_10000_pixels_at_512():
    assert REFERENCE_MIN_AREA * 512 * 512 == pytest.approx(10_000)


def test_full_and_empty_masks():
    np.testing.assert_array_equal(full_mask(3, 5), np.ones((3, 5), dtype=np.float32))
    np.testing.assert_array_equal(empty_mask(3, 5), np.zeros((3, 5), dtype=np.float32))
    assert full_mask(3, 5).dtype == empty_mask(3, 5).dtype == np.float32
    assert make_mask("full", rng(0), 4, 6).sum() == 24
    assert make_mask("empty", rng(0), 4, 6).sum() == 0


@pytest.mark.parametrize("generate", [random_box, random_blob])
def test_same_seed_same_mask_different_seed_different_mask(generate):
    np.testing.assert_array_equal(generate(rng(7), 64, 64), generate(rng(7), 64, 64))
    masks = [generate(rng(seed), 64, 64) for seed in range(5)]
    assert len({m.tobytes() for m in masks}) == 5


@pytest.mark.parametrize("shape", [(64, 64), (48, 80), (80, 48), (512, 512), (7, 300)])
@pytest.mark.parametrize("areas", [(REFERENCE_MIN_AREA, 0.5), (0.2, 0.3), (0.01, 1.0)])
def test_boxes_are_single_rectangles_within_area_bounds(shape, areas):
    for seed in SEEDS:
        mask = random_box(rng(seed), *shape, *areas)
        assert_binary_float32(mask, shape)
        assert_area_within(mask, *areas)
        assert_single_rectangle(mask)


def test_box_aspect_ratio_is_bounded_where_the_image_allows():
    for seed in SEEDS:
        mask = random_box(rng(seed), 512, 512)
        height, width = mask.any(axis=1).sum(), mask.any(axis=0).sum()
        assert 1 / 4.2 <= height / width <= 4.2  # 4:1 at most, up to integer rounding


def test_box_with_equal_min_and_max_area_still_covers_min_area():
    # 0.3 * 64 * 64 = 1228.8 is no whole pixel count: the box rounds up rather than falling below min_area.
    for seed in range(20):
        mask = random_box(rng(seed), 64, 64, 0.3, 0.3)
        assert mask.sum() >= math.ceil(0.3 * 64 * 64)
        assert_single_rectangle(mask)


def test_box_positions_reach_every_border_evenly():
    # Uniform placement: boxes touch each border sometimes, and coverage is balanced left/right and top/bottom.
    masks = np.stack([random_box(rng(seed), 32, 48, 0.2, 0.3) for seed in SEEDS])
    for edge in (masks[:, 0, :], masks[:, -1, :], masks[:, :, 0], masks[:, :, -1]):
        assert edge.any(axis=1).sum() >= 3
    coverage = masks.sum(axis=0)
    assert coverage[:16].sum() == pytest.approx(coverage[16:].sum(), rel=0.15)
    assert coverage[:, :24].sum() == pytest.approx(coverage[:, 24:].sum(), rel=0.15)


@pytest.mark.parametrize("shape", [(64, 64), (48, 80)])
@pytest.mark.parametrize("areas", [(REFERENCE_MIN_AREA, 0.5), (0.2, 0.3)])
def test_blobs_within_area_bounds(shape, areas):
    for seed in SEEDS:
        mask = random_blob(rng(seed), *shape, *areas)
        assert_binary_float32(mask, shape)
        assert_area_within(mask, *areas)


def test_blobs_at_512_within_area_bounds():
    for seed in range(3):
        mask = random_blob(rng(seed), 512, 512)
        assert_binary_float32(mask, (512, 512))
        assert_area_within(mask, REFERENCE_MIN_AREA, 0.5)


def test_blob_area_is_spread_over_the_range():
    fractions = [random_blob(rng(seed), 64, 64, 0.1, 0.5).mean() for seed in range(100)]
    assert min(fractions) < 0.2 and max(fractions) > 0.4


def test_blobs_are_smooth_not_speckle():
    # A smooth field's top region has a short boundary: far fewer 4-neighbour changes than independent pixels.
    mask = random_blob(rng(0), 64, 64, 0.3, 0.3)
    changes = np.abs(np.diff(mask, axis=0)).sum() + np.abs(np.diff(mask, axis=1)).sum()
    speckle_changes = 2 * 64 * 63 * 2 * 0.3 * 0.7  # expected for independent pixels at 30 % coverage
    assert changes < 0.15 * speckle_changes


@pytest.mark.parametrize("min_area, max_area", [(0, 0.5), (0.6, 0.5), (0.1, 1.5), (-0.1, 0.2)])
@pytest.mark.parametrize("kind", ["box", "blob"])
def test_bad_area_bounds_are_rejected(kind, min_area, max_area):
    with pytest.raises(ValueError, match=r"min_area.*max_area"):
        make_mask(kind, rng(0), 32, 32, min_area=min_area, max_area=max_area)


def test_object_mask_returns_one_of_the_given_masks_binarised():
    a = np.zeros((8, 8), dtype=np.uint8)
    a[:2] = 255
    b = np.zeros((8, 8), dtype=bool)
    b[:, :3] = True
    c = np.zeros((8, 8), dtype=np.float32)
    c[5, 5] = 1.0
    expected = [(a == 255).astype(np.float32), b.astype(np.float32), c]
    picked = set()
    for seed in range(50):
        mask = object_mask([a, b, c], rng(seed))
        assert_binary_float32(mask, (8, 8))
        matches = [i for i, e in enumerate(expected) if np.array_equal(mask, e)]
        assert len(matches) == 1
        picked.add(matches[0])
    assert picked == {0, 1, 2}  # uniform choice reaches every mask
    np.testing.assert_array_equal(object_mask([a, b, c], rng(3)), object_mask([a, b, c], rng(3)))


def test_object_mask_rejects_empty_sequence():
    with pytest.raises(ValueError, match="at least one object mask"):
        object_mask([], rng(0))


def test_make_mask_object_kind():
    m = np.zeros((16, 16), dtype=np.uint8)
    m[4:8, 4:8] = 1
    np.testing.assert_array_equal(make_mask("object", rng(0), 16, 16, object_masks=[m]), m.astype(np.float32))
    with pytest.raises(ValueError, match="object_masks"):
        make_mask("object", rng(0), 16, 16)
    with pytest.raises(ValueError, match=r"expected shape \(32, 32\), got \(16, 16\)"):
        make_mask("object", rng(0), 32, 32, object_masks=[m])


@pytest.mark.parametrize("kind", ["box", "blob"])
def test_make_mask_matches_the_generators(kind):
    generate = {"box": random_box, "blob": random_blob}[kind]
    np.testing.assert_array_equal(make_mask(kind, rng(5), 40, 56, min_area=0.1, max_area=0.2),
                                  generate(rng(5), 40, 56, 0.1, 0.2))


def test_make_mask_unknown_kind_names_it_and_lists_kinds():
    with pytest.raises(ValueError) as err:
        make_mask("circle", rng(0), 16, 16)
    message = str(err.value)
    assert "'circle'" in message
    assert all(kind in message for kind in MASK_KINDS)


def test_check_mask_accepts_0_255_uint8_bool_and_0_1():
    expected = np.array([[0, 1], [1, 0]], dtype=np.float32)
    for mask in [
        np.array([[0, 255], [255, 0]], dtype=np.uint8),
        np.array([[False, True], [True, False]]),
        np.array([[0, 1], [1, 0]], dtype=np.int64),
        np.array([[0.0, 1.0], [1.0, 0.0]]),
    ]:
        out = check_mask(mask, 2, 2, name="masks/a.png")
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(check_mask(np.full((2, 2), 255, dtype=np.uint8), 2, 2), np.ones((2, 2)))


def test_check_mask_rejects_wrong_shape_naming_the_file():
    with pytest.raises(ValueError, match=r"^mask masks/a\.png: expected shape \(64, 64\), got \(32, 32\)$"):
        check_mask(np.zeros((32, 32)), 64, 64, name="mask masks/a.png")
    with pytest.raises(ValueError, match=r"masks/rgb\.png: expected shape \(64, 64\), got \(64, 64, 3\)"):
        check_mask(np.zeros((64, 64, 3), dtype=np.uint8), 64, 64, name="masks/rgb.png")


def test_check_mask_rejects_non_binary_values_listing_them():
    mask = np.array([[0, 17], [255, 0]], dtype=np.uint8)
    with pytest.raises(ValueError, match=r"masks/a\.png: expected a binary mask \(0/1 or 0/255\), found values \[0, 17, 255\]"):
        check_mask(mask, 2, 2, name="masks/a.png")
    # A mix of the two conventions is ambiguous, so it is rejected too.
    with pytest.raises(ValueError, match=r"found values \[0, 1, 255\]"):
        check_mask(np.array([[0, 1], [255, 0]], dtype=np.uint8), 2, 2)


def test_check_mask_lists_at_most_five_values():
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    with pytest.raises(ValueError) as err:
        check_mask(grey, 8, 8, name="grey.png")
    assert "found values [0, 1, 2, 3, 4, ...]" in str(err.value)


def test_box_holding_draws_boxes_until_one_holds_the_share_of_the_structure():
    structure = np.zeros((64, 64), np.float32)
    structure[50:60, 50:60] = 1  # a small object in a corner: most random boxes miss it
    misses = sum(float((random_box(rng(seed), 64, 64, 0.1, 0.3) * structure).sum()) < 25 for seed in range(50))
    assert misses > 25
    for seed in range(50):
        box = box_holding(structure, 0.25, rng(seed), 0.1, 0.3)
        assert_binary_float32(box, (64, 64))
        assert (box * structure).sum() >= 25 and 0.1 * 4096 <= box.sum() <= 0.3 * 4096


def test_box_holding_with_share_0_or_no_structure_is_the_plain_random_box():
    structure = np.zeros((32, 32), np.float32)
    structure[0, 0] = 1
    for seed in range(10):
        plain = random_box(rng(seed), 32, 32, 0.1, 0.5)
        np.testing.assert_array_equal(box_holding(structure, 0.0, rng(seed), 0.1, 0.5), plain)
        np.testing.assert_array_equal(box_holding(np.zeros((32, 32)), 0.5, rng(seed), 0.1, 0.5), plain)


def test_box_holding_falls_back_to_the_box_that_held_most():
    structure = np.zeros((64, 64), np.float32)
    structure[:, 0] = structure[:, 63] = 1  # two far apart lines: no box of at most 10% holds 90% of them
    box = box_holding(structure, 0.9, rng(3), 0.05, 0.1, tries=20)
    candidates = [random_box(generator, 64, 64, 0.05, 0.1) for generator in [rng(3)] for _ in range(20)]
    assert (box * structure).sum() == max((c * structure).sum() for c in candidates) > 0
