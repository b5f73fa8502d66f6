"""The shapes world's depth: cards standing on a ground plane, read back from the image alone, exactly on renders."""

import numpy as np

from localctrl.shapes.depth_reader import read_depth
from localctrl.shapes.render import BACKDROP, DEPTH_FAR, DEPTH_NEAR, ground_depth, render
from localctrl.shapes.scene import BACKGROUNDS, Scene, ShapeObject, split_scenes
from localctrl.shapes.segmenter import segment


def test_the_depth_reader_reads_every_rendered_scene_exactly():
    scenes = [scene for _, scene in split_scenes(0, "test", 200)]
    for scene in scenes:
        rendered = render(scene, 64)
        assert np.array_equal(read_depth(rendered.image), rendered.depth)
        assert np.array_equal(segment(rendered.image), rendered.semantic)
    assert any(len(scene.objects) == 2 for scene in scenes) and any(scene.gradient for scene in scenes)


def test_a_card_standing_lower_is_nearer_known_answer():
    far = ShapeObject("square", "blue", 16.0, 16.0, 12.0, 1)  # rows 10..21: stands on row 21
    near = ShapeObject("circle", "red", 44.0, 44.0, 16.0, 2)  # rows 36..51: stands on row 51
    scene = Scene(background="grey", gradient=True, objects=(far, near), split="test")
    rendered = render(scene, 64)
    ground = np.linspace(DEPTH_FAR, DEPTH_NEAR, 64).round()
    assert np.array_equal(ground_depth(64), ground.astype(np.uint8))
    assert rendered.depth[16, 16] == ground[21] == 128 and rendered.depth[44, 44] == ground[51] == 219
    assert rendered.depth[16, 44] == rendered.depth[63, 0] == BACKDROP  # the background: a far backdrop
    assert ground[0] == DEPTH_FAR and ground[-1] == DEPTH_NEAR
    # The reader sees the same: nearer (brighter) for the card drawn lower, the ground's row values elsewhere.
    read = read_depth(rendered.image)
    assert np.array_equal(read, rendered.depth)
    moved = Scene(background="grey", gradient=True, objects=(far, ShapeObject("circle", "red", 44.0, 30.0, 16.0, 2)), split="test")
    assert read_depth(render(moved, 64).image)[30, 44] == ground[37] < read[44, 44]  # raised: farther


def test_a_plain_background_reads_as_the_backdrop():
    image = np.empty((64, 64, 3), np.uint8)
    image[:] = BACKGROUNDS["white"]
    assert np.array_equal(read_depth(image), np.full((64, 64), BACKDROP, np.uint8))
