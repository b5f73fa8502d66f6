"""Pickled weights: refused by the loaders with what to do, converted once by `localctrl convert`, code never run."""

import os

import pytest
import torch
from diffusers import T2IAdapter
from safetensors.torch import load_file
from typer.testing import CliRunner

from cli import app
from localctrl.errors import InputError
from localctrl.models.adapters import load_adapter
from localctrl.models.convert import PickledWeightsError, convert_to_safetensors
from localctrl.models.stacks import load_stack

runner = CliRunner()


def tencentarc_like_folder(folder):
    """A small T2I-Adapter as TencentARC publishes theirs: config.json + a pickled plain state dict, no safetensors."""
    torch.manual_seed(0)
    adapter = T2IAdapter(in_channels=1, channels=[32, 64, 64, 64], num_res_blocks=1, downscale_factor=8)
    adapter.save_pretrained(folder, safe_serialization=True)
    (folder / "diffusion_pytorch_model.safetensors").unlink()
    torch.save(adapter.state_dict(), folder / "diffusion_pytorch_model.bin")
    return adapter.state_dict()


def test_a_bin_only_adapter_is_refused_then_converted_by_the_cli_and_loads_exactly(tmp_path):
    folder = tmp_path / "t2iadapter_canny"
    saved = tencentarc_like_folder(folder)
    with pytest.raises(PickledWeightsError) as raised:
        load_adapter(folder)
    message = str(raised.value)
    assert str(folder / "diffusion_pytorch_model.bin") in message and f"localctrl convert {folder}" in message
    assert "never unpickles" in message and "weights_only=True" in message

    result = runner.invoke(app, ["convert", str(folder)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert (folder / "diffusion_pytorch_model.safetensors").is_file() and "1 safetensors file(s) written" in result.output
    loaded = load_adapter(folder).state_dict()
    assert loaded.keys() == saved.keys()
    assert all(torch.equal(loaded[key], value) for key, value in saved.items())

    again = runner.invoke(app, ["convert", str(folder)], env={"COLUMNS": "250"})
    assert again.exit_code == 0 and "already converted" in again.output and "0 safetensors file(s) written" in again.output


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # what an unrestricted unpickler would run
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_with_code_in_it_is_refused_naming_the_file_and_not_run(tmp_path):
    folder, marker = tmp_path / "evil", tmp_path / "it-ran"
    folder.mkdir()
    torch.save({"weight": torch.zeros(2), "payload": Payload(marker)}, folder / "diffusion_pytorch_model.bin")
    result = runner.invoke(app, ["convert", str(folder)], env={"COLUMNS": "250"})
    assert result.exit_code == 2
    assert str(folder / "diffusion_pytorch_model.bin") in result.output and "nothing in it was run" in result.output
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1
    assert not marker.exists() and not (folder / "diffusion_pytorch_model.safetensors").exists()


def test_non_state_dicts_are_refused_and_shared_tensors_are_written_apart(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    torch.save([torch.zeros(2)], folder / "pytorch_model.bin")
    with pytest.raises(InputError, match="pytorch_model.bin: holds a list, not a state dict"):
        convert_to_safetensors(folder, say=lambda line: None)
    base = torch.arange(12.0).reshape(3, 4)
    tied = {"embed.weight": base, "head.weight": base, "row": base[1], "column": base[:, 1]}  # shared storage, a view
    torch.save({"state_dict": tied}, folder / "pytorch_model.bin")  # a checkpoint's wrapper is unwrapped
    assert convert_to_safetensors(folder, say=lambda line: None) == [folder / "model.safetensors"]
    written = load_file(folder / "model.safetensors")
    assert written.keys() == tied.keys() and all(torch.equal(written[key], value) for key, value in tied.items())


def test_a_pipeline_with_a_pickled_unet_is_refused_and_converted_in_its_subfolder(tiny_stack, tmp_path):
    folder = tiny_stack.save_pretrained(tmp_path / "pipeline")
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    torch.save(tiny_stack.unet.state_dict(), folder / "unet" / "diffusion_pytorch_model.bin")
    with pytest.raises(PickledWeightsError, match=r"unet/diffusion_pytorch_model.bin holds pickled weights"):
        load_stack(folder)
    assert convert_to_safetensors(folder, say=lambda line: None) == [folder / "unet" / "diffusion_pytorch_model.safetensors"]
    loaded = load_stack(folder).unet.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in tiny_stack.unet.state_dict().items())
