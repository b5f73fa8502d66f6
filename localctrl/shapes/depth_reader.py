"""World depth reader: the depth map of a shapes-world image, read back from the image alone.

By construction, like the segmenter it builds on (localctrl.shapes.segmenter), rather than learnt: in the world's
depth (localctrl.shapes.render) every object is a card standing on a ground plane, so its disparity is the ground's
at the object's lowest row, and the background is a far backdrop. Finding the objects is the segmenter's job; the
rest is geometry. Exact on rendered images of the default world; on generated images it reads what was drawn: a card
drawn lower stands nearer.
"""

import numpy as np

from localctrl.shapes.render import depth_map
from localctrl.shapes.segmenter import objects


def read_depth(image: np.ndarray) -> np.ndarray:
    """(H, W) uint8 depth (the world's disparity, nearer is brighter) of an (H, W, 3) image, uint8 or float in [0, 1]."""
    instance = np.zeros(np.shape(image)[:2], dtype=np.int32)
    for label, (region, _shape) in enumerate(objects(image), start=1):
        instance[region] = label
    return depth_map(instance)
