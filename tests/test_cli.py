"""The `localctrl` command line, driven the way a user types it (typer's runner, same process)."""

import re

from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "sample", "bench", "report", "data", "doctor", "fetch", "convert", "ui", "stack"):
        assert re.search(rf"│ {command}\s", result.output), command


def test_doctor_reports_versions_device_store_and_missing_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("LOCALCTRL_WEIGHTS_DIR", str(tmp_path / "weights"))
    result = runner.invoke(app, ["doctor"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "diffusers" in result.output and "torch" in result.output
    assert "CPU only" in result.output or "CUDA" in result.output
    assert "sqlite:///" in result.output  # the private store of this test
    assert "stable-diffusion-v1-5/stable-diffusion-v1-5" in result.output
    assert "missing" in result.output and "hf download" in result.output


def test_stack_command_builds_checks_and_saves_the_tiny_stack(tmp_path):
    result = runner.invoke(app, ["stack", "tiny", "--adapter", "light", "--save", str(tmp_path / "tiny")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "fit the UNet's down blocks" in result.output
    assert (tmp_path / "tiny" / "unet" / "diffusion_pytorch_model.safetensors").exists()
    assert (tmp_path / "tiny" / "adapter-light" / "config.json").exists()
    assert str(tmp_path / "tiny") in result.output


def test_stack_command_checks_the_bases_own_adapter_type_by_default_also_on_sdxl(tmp_path):
    result = runner.invoke(app, ["stack", "tiny-xl", "--save", str(tmp_path / "xl")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "full_xl adapter features" in result.output and (tmp_path / "xl" / "adapter-full_xl" / "config.json").exists()
    reloaded = runner.invoke(app, ["stack", str(tmp_path / "xl")], env={"COLUMNS": "200"})
    assert reloaded.exit_code == 0 and "text_encoder_2" in reloaded.output, reloaded.output


def test_data_prepare_needs_exactly_one_source_and_reads_sidecar_captions(tmp_path):
    import numpy as np
    from PIL import Image

    for both in ([], ["--images", str(tmp_path), "--hf-dataset", str(tmp_path)]):
        result = runner.invoke(app, ["data", "prepare", "--out", str(tmp_path / "out"), *both])
        assert result.exit_code == 2 and "exactly one of --images" in result.output
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "x.jpg")
    (tmp_path / "x.txt").write_text("a black square")
    result = runner.invoke(app, ["data", "prepare", "--images", str(tmp_path), "--out", str(tmp_path / "out"), "--size", "32"])
    assert result.exit_code == 0 and "1 written" in result.stdout
    assert '"caption":"a black square"' in (tmp_path / "out" / "manifest.jsonl").read_text()


def test_bench_bad_suite_and_shard_are_clear_errors(tmp_path):
    result = runner.invoke(app, ["bench", "--suite", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown suite 'nope'; shipped suites:" in result.output
    result = runner.invoke(app, ["bench", "--suite", "smoke", "--shard", "2/2", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--shard '2/2': expected i/n with 0 <= i < n" in result.output


def test_every_bad_input_is_one_red_line_with_exit_code_2_and_no_traceback(tmp_path):
    cases = [
        (["train", "--set", "base=does/not-exist", "--set", f"out={tmp_path / 'run'}"], "base model 'does/not-exist'"),
        (["train", "--set", "z0.wieght=1"], "z0.wieght: Extra inputs are not permitted"),
        (["train", "--config", str(tmp_path / "missing.yaml")], "missing.yaml does not exist"),
        (["train", "--set", "condition=foo"], "condition: Input should be 'canny'"),
        (["train", "--set", "steps=[1,"], "override 'steps=[1,' is not valid YAML"),
        (["train", "--set", "optim.lr=.inf"], "optim.lr: Input should be a finite number"),
        (["sample", "--prompt", "a red circle", "--base", "tiny", "--guidance", "nan"], "guidance: Input should be a finite number"),
        (["sample", "--prompt", "a red circle", "--base", "tiny", "--adapter", str(tmp_path / "no-adapter")], "no-adapter"),
        (["bench", "--suite", str(tmp_path / "missing.yaml")], "missing.yaml does not exist"),
        (["report", "--suite", "never-run"], "no finished run of suite 'never-run'"),
    ]
    for arguments, message in cases:
        result = runner.invoke(app, arguments, env={"COLUMNS": "250"})
        assert result.exit_code == 2, (arguments, result.output)
        assert message in result.output and "Traceback" not in result.output, (arguments, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), (arguments, result.exception)


def test_choice_options_list_their_choices_in_help():
    for command, listed in ((["sample"], "ddim|ddpm|pndm|euler|euler-a|dpm++"), (["sample"], "fp32|bf16|fp16"),
                            (["report"], "pm|interval"), (["perf"], "cpu|gpu"), (["perf"], "bf16-weights|bf16-autocast")):
        result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "250"})
        assert result.exit_code == 0 and listed in result.output, (command, listed)
