"""A stand-in for clean-fid's `inception-2015-12-05.pt`, the StyleGAN2 TorchScript port of TF Inception.

Same file format (a TorchScript archive loaded by `torch.jit.load`) and interface as the real one: a `layers`
submodule mapping (N, 3, 299, 299) inputs scaled to [-1, 1] to 2048-d pool features, and `forward(img,
return_features, use_fp16, no_output_bias)` that resizes [0, 255] images itself. It differs in what is inside:
two seeded random convolutions instead of Inception v3 (8 MB instead of 95 MB), so its FID means nothing.
torch.jit.script needs this class's source in a file, hence a module of its own.
"""

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from localctrl.common.seeding import seeded


class StandInLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 32, 8, stride=8)
        self.conv_1 = nn.Conv2d(32, 2048, 4, stride=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = F.relu(self.conv_1(F.relu(self.conv(x))))
        return features.mean(dim=(2, 3), keepdim=True)  # (N, 2048, 1, 1), like the real pool3 output


class StandInInception(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = StandInLayers()
        self.output = nn.Linear(2048, 1008)

    def forward(self, img: torch.Tensor, return_features: bool = False, use_fp16: bool = False,
                no_output_bias: bool = False) -> torch.Tensor:
        x = img.to(torch.float16 if use_fp16 else torch.float32)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        features = self.layers.forward((x - 128) / 128).reshape(-1, 2048)
        if return_features:
            return features
        logits = features @ self.output.weight.t() if no_output_bias else self.output(features)
        return F.softmax(logits, dim=1)


def write_inception(path: Path, seed: int = 0) -> Path:
    with seeded(seed), warnings.catch_warnings():  # torch 2.14 calls torch.jit deprecated: the real file is TorchScript
        warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", FutureWarning)
        torch.jit.script(StandInInception().eval()).save(str(path))  # on CPU: torch.jit.load has no map_location
    return path
