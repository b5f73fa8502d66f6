"""Depth and seg conditions as the published adapters and ControlNets take them."""

import json

import numpy as np
import pytest
import torch

from localctrl.data.conditions import CHANNELS, manifest_condition, palette, seg_to_colour, structure
from localctrl.errors import InputError


def test_depth_is_a_grey_map_repeated_to_three_channels():
    depth = np.array([[0, 255], [51, 102]], np.uint8)
    condition = manifest_condition("depth", depth)
    assert condition.shape == (CHANNELS["depth"], 2, 2) == (3, 2, 2)
    assert torch.equal(condition[0], condition[2]) and condition[0, 1, 0] == pytest.approx(0.2)


def test_seg_labels_are_shown_in_the_named_palette():
    labels = np.array([[0, 1], [2, 149]], np.uint8)
    ade = manifest_condition("seg", labels, "ade20k")
    # ADE20K's first colours (wall, building, sky) and its last, as ControlNet's seg annotator draws them
    assert (ade[:, 0, 0] * 255).round().tolist() == [120, 120, 120]
    assert (ade[:, 0, 1] * 255).round().tolist() == [180, 120, 120]
    assert (ade[:, 1, 0] * 255).round().tolist() == [6, 230, 230]
    assert (ade[:, 1, 1] * 255).round().tolist() == [92, 0, 255]
    assert len(palette("ade20k")) == 150 and len({tuple(c) for c in palette("ade20k").tolist()}) == 149  # two share a grey
    with pytest.raises(InputError, match="class 149 has no colour in the 'shapes' palette"):
        manifest_condition("seg", labels, "shapes")
    with pytest.raises(InputError, match="one label per pixel"):
        manifest_condition("seg", np.zeros((2, 2, 3), np.uint8), "ade20k")
    assert seg_to_colour(torch.tensor([[[0, 3]]])).shape == (1, 3, 1, 2)


def test_the_palette_file_names_its_source():
    from pathlib import Path

    import localctrl.data.conditions as conditions

    document = json.loads(Path(conditions.__file__).with_name("ade20k-palette.json").read_text())
    assert "mmsegmentation" in document["source"] and len(document["colours"]) == 150


def test_structure_is_an_edge_maps_edges_and_a_label_maps_outlines():
    edges = torch.zeros(1, 1, 16, 16)
    edges[0, 0, 4, 2:9] = 1
    assert torch.equal(structure(edges), edges)
    labels = torch.zeros(1, 32, 32, dtype=torch.long)
    labels[0, 8:24, 8:24] = 2  # one square object
    outline = structure(seg_to_colour(labels))
    assert outline.shape == (1, 1, 32, 32) and outline.sum() > 0
    assert outline[0, 0, 12:20, 12:20].sum() == 0 and outline[0, 0, :4].sum() == 0  # nothing inside it or far from it
    ring = torch.zeros(32, 32, dtype=torch.bool)
    ring[6:26, 6:26], ring[10:22, 10:22] = True, False
    assert bool(outline[0, 0][~ring].sum() == 0)  # every outline pixel is within 2 px of the square's border
    assert structure(torch.full((1, 3, 32, 32), 0.5)).sum() == 0  # a flat depth map has none
