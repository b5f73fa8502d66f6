"""The masking itself: masks resized to feature maps (nearest as the reference, area, max), with known answers."""

import pytest
import torch

from localctrl.masking import masked, resize_mask


def thin_column_mask() -> torch.Tensor:
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 3] = 1  # one pixel wide, inside the left half
    return mask


def test_resize_known_answers_and_thin_masks():
    mask = thin_column_mask()
    assert resize_mask(mask, (2, 2), "nearest").sum() == 0  # the reference's nearest resize erases it
    assert torch.equal(resize_mask(mask, (2, 2), "area"), torch.tensor([[[[0.25, 0.0], [0.25, 0.0]]]]))
    assert torch.equal(resize_mask(mask, (2, 2), "max"), torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]]))
    with pytest.raises(ValueError, match="expected one of nearest, area, max"):
        resize_mask(mask, (2, 2), "bicubic")


def test_masked_multiplies_each_sample_by_its_own_resized_mask():
    feature = torch.ones(2, 3, 2, 2)
    mask = torch.zeros(2, 1, 4, 4)
    mask[0, :, :2, :2] = 1  # sample 0: the top-left quarter; sample 1: nothing
    expected = torch.zeros(2, 3, 2, 2)
    expected[0, :, 0, 0] = 1
    assert torch.equal(masked(feature, mask, "area"), expected)
