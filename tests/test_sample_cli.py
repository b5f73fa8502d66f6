"""`localctrl sample` end to end on the tiny stack: PNG files equal the sampler's own images."""

import numpy as np
import torch
from PIL import Image
from typer.testing import CliRunner

from cli import app
from localctrl.data.sample_inputs import load_condition, parse_mask
from localctrl.local_adapter import LocalAdapter
from localctrl.models.adapters import build_adapter
from localctrl.models.architectures import TINY
from localctrl.sampling import Request, SamplerSettings, sample, to_uint8


def test_sample_writes_the_samplers_images_and_a_grid(tmp_path, tiny_stack):
    adapter = LocalAdapter(build_adapter(TINY, "full", in_channels=1, seed=2), resize="max")
    adapter.save_pretrained(tmp_path / "adapter")
    condition = np.zeros((64, 64), np.uint8)
    condition[20:44, 12:52] = 255
    Image.fromarray(condition).save(tmp_path / "edges.png")
    args = ["sample", "--base", "tiny", "--adapter", str(tmp_path / "adapter"), "--prompt", "a red circle", "--prompt", "a blue square",
            "--condition", str(tmp_path / "edges.png"), "--mask", "box:8,8,40,40", "--steps", "3", "--seed", "5",
            "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "grid.png").stat().st_size > 0 and str(tmp_path / "out") in result.output

    tensor, mask = load_condition(tmp_path / "edges.png", 1, 64), parse_mask("box:8,8,40,40", 64)
    requests = [Request("a red circle", 5, tensor, mask), Request("a blue square", 6, tensor, mask)]
    expected = to_uint8(sample(tiny_stack, requests, LocalAdapter.from_pretrained(tmp_path / "adapter"), SamplerSettings(steps=3), progress=False))
    for k in range(2):
        written = torch.from_numpy(np.array(Image.open(tmp_path / "out" / f"{k:05d}.png"))).permute(2, 0, 1)
        assert torch.equal(written, expected[k])


def test_sample_reports_bad_input_before_generating(tmp_path):
    result = CliRunner().invoke(app, ["sample", "--base", "tiny", "--prompt", "x", "--condition", str(tmp_path / "missing.png")])
    assert result.exit_code == 2 and "--condition needs --adapter" in result.output


def test_a_prompt_longer_than_the_text_encoder_reads_is_said_to_be_cut(tmp_path, tiny_stack):
    long = "a red circle beside a blue square " * 12  # well over CLIP's 77 tokens
    assert tiny_stack.cut_prompts(["a red circle", long, long]) == [long]
    result = CliRunner().invoke(app, ["sample", "--base", "tiny", "--prompt", long, "--prompt", "a red circle", "--steps", "1",
                                      "--out", str(tmp_path / "out")], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "is longer than the text encoder's 77 tokens: the rest is ignored" in result.output and result.output.count("longer than") == 1
