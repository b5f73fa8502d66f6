import numpy as np
import pytest
import torch
from PIL import Image

from localctrl.data.sample_inputs import broadcast, load_condition, parse_mask


def test_mask_specs_known_answers(tmp_path):
    assert parse_mask("none", 8) is None
    assert torch.equal(parse_mask("full", 8), torch.ones(1, 8, 8))
    box = parse_mask("box:2,1,5,3", 8)
    assert box.sum() == 6 and box[0, 1:3, 2:5].all() and box[0, 0].sum() == 0
    drawn = np.zeros((8, 8), np.uint8)
    drawn[4:, :] = 255
    Image.fromarray(drawn).save(tmp_path / "m.png")
    assert torch.equal(parse_mask(str(tmp_path / "m.png"), 8)[0], torch.from_numpy(drawn / 255).float())


def test_bad_masks_and_conditions_are_named(tmp_path):
    with pytest.raises(ValueError, match="box must lie inside the 8×8 image"):
        parse_mask("box:0,0,9,4", 8)
    with pytest.raises(ValueError, match="expected box:x0,y0,x1,y1 with four integers"):
        parse_mask("box:1,2,3", 8)
    grey = np.full((8, 8), 128, np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    with pytest.raises(ValueError, match=r"grey.png.*binary"):
        parse_mask(str(tmp_path / "grey.png"), 8)
    with pytest.raises(ValueError, match=r"condition .*grey.png: is 8×8, the model needs 64×64"):
        load_condition(tmp_path / "grey.png", 1, 64)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png: not a readable image"):
        load_condition(tmp_path / "broken.png", 3, 8)
    with pytest.raises(ValueError, match="2 --mask values for 3 prompts"):
        broadcast(["a", "b"], 3, "--mask")


def test_conditions_load_with_the_adapters_channels(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 255
    Image.fromarray(rgb).save(tmp_path / "red.png")
    assert load_condition(tmp_path / "red.png", 3, 4).shape == (3, 4, 4)
    single = load_condition(tmp_path / "red.png", 1, 4)
    assert single.shape == (1, 4, 4) and 0 < single.max() < 1  # luminance of pure red
