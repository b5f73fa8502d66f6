"""`localctrl train` on the tiny stack and the shapes world: resume, NaN handling, logging, errors."""

import json

import mlflow
import pytest
import torch
from safetensors.torch import load_file

import localctrl.train as train_module
import localctrl.train_step as train_step
from localctrl.config import load_train_config
from localctrl.data.manifest import write_manifest
from localctrl.errors import InputError
from localctrl.train import NonFiniteLossError, train

SMALL = ["base=tiny", "steps=4", "validate_every=2", "checkpoint_every=2", "log_every=1", "data.shapes_items=32",
         "data.validation_items=4", "validation_steps=2", "optim.batch_size=2", "optim.grad_accum=2", "optim.lr=1e-3"]


def config(tmp_path, *extra):
    return load_train_config(overrides=[*SMALL, f"out={tmp_path}", *extra])


def adapter_weights(folder):
    return load_file(folder / "diffusion_pytorch_model.safetensors")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def kill_at_step_3(out, monkeypatch, *extra) -> None:
    """Train into `out` and die at step 3 (after the step-2 checkpoint), as a killed process would."""
    real = train_module.step_generator

    def killed_at_step_3(seed, name, step):
        if step == 3:
            raise KeyboardInterrupt
        return real(seed, name, step)

    with monkeypatch.context() as patched:
        patched.setattr(train_module, "step_generator", killed_at_step_3)
        with pytest.raises(KeyboardInterrupt):
            train(config(out, *extra))


def test_a_killed_run_resumes_to_the_same_adapter(tmp_path, monkeypatch):
    straight = train(config(tmp_path / "straight"))
    kill_at_step_3(tmp_path / "resumed", monkeypatch)
    resumed = train(config(tmp_path / "resumed", "data.workers=2"))  # how batches are made may change on resume
    expected, got = adapter_weights(straight.last_adapter), adapter_weights(resumed.last_adapter)
    assert all(torch.equal(expected[key], got[key]) for key in expected)
    assert resumed.run_id == json.loads((tmp_path / "resumed" / "state.json").read_text())["run_id"]
    assert mlflow.get_run(resumed.run_id).data.tags["localctrl.data.workers"] == "2"


def test_losses_params_and_validation_are_logged(tmp_path):
    result = train(config(tmp_path, "z0.weight=0.01"))
    run = mlflow.get_run(result.run_id)
    assert {"loss", "loss_simple", "loss_z0", "lr", "grad_norm", "steps_per_s", "val_edge_f1_in", "val_edge_density_out"} <= set(run.data.metrics)
    assert run.data.params["z0.weight"] == "0.01" and run.data.params["masks.resize"] == "area"
    assert run.data.metrics["loss_z0"] > 0
    assert json.loads((result.best_adapter / "localctrl.json").read_text())["masked_training"] is True
    artifacts = {entry.path for entry in mlflow.MlflowClient().list_artifacts(result.run_id, "validation")}
    assert artifacts == {"validation/step-000002.png", "validation/step-000004.png"}
    images = [entry.path for entry in mlflow.MlflowClient().list_artifacts(result.run_id, "images") if entry.path.endswith(".png")]
    assert sorted(path.split("+")[2] for path in images if "validation+step+" in path) == ["2", "4"]  # mlflow.log_image steps
    assert mlflow.artifacts.load_dict(f"runs:/{result.run_id}/config.json")["z0"]["weight"] == 0.01


@pytest.mark.parametrize("condition, selected", [("depth", "val_depth_mae_in"), ("seg", "val_seg_acc_in")])
def test_depth_and_seg_adapters_train_on_the_shapes_world_and_are_validated_by_reading_back(tmp_path, condition, selected):
    result = train(config(tmp_path, f"condition={condition}"))
    metrics = mlflow.get_run(result.run_id).data.metrics
    assert selected in metrics and "val_edge_f1_in" in metrics and result.best_metric_name == selected
    history = [m.value for m in mlflow.MlflowClient().get_metric_history(result.run_id, selected)]
    assert len(history) == 2 and result.best_metric == pytest.approx(max(history) if condition == "seg" else -min(history))
    assert json.loads((result.best_adapter / "config.json").read_text())["in_channels"] == 3  # RGB depth / palette seg


def test_the_global_baseline_trains_without_the_z0_term(tmp_path):
    result = train(config(tmp_path, "masked=false"))
    assert mlflow.get_run(result.run_id).data.metrics["loss_z0"] == 0


def test_a_nan_loss_stops_naming_the_step_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    real = train_step.local_control_loss
    calls = {"n": 0}

    def nan_at_step_3(*args):
        calls["n"] += 1
        terms = real(*args)
        if calls["n"] > 4:  # micro-batches 5+ belong to step 3
            terms.loss = terms.loss * float("nan")
        return terms

    monkeypatch.setattr(train_step, "local_control_loss", nan_at_step_3)
    with pytest.raises(NonFiniteLossError, match="at step 3"):
        train(config(tmp_path))
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 2


def test_an_empty_dataset_is_refused_before_training(tmp_path):
    write_manifest(tmp_path, [])
    with pytest.raises(ValueError, match="has no items in split 'train'"):
        train(config(tmp_path / "out", f"data.source={tmp_path}"))


def test_an_unwritable_out_or_an_unreachable_store_stops_training_before_it_starts(tmp_path, monkeypatch):
    from servers import free_port

    from localctrl.errors import NotAvailableError

    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(ValueError, match=r"a-file/out is not writable"):
        train(config(tmp_path / "a-file" / "out"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(NotAvailableError, match="cannot be reached"):
        train(config(tmp_path / "out"))
    assert not (tmp_path / "out" / "state.json").exists()


def test_an_sdxl_adapter_resumes_bit_exactly_on_tiny_xl(tmp_path, monkeypatch):
    xl = ("base=tiny-xl", "adapter=full_xl")
    straight = train(config(tmp_path / "straight", *xl))
    kill_at_step_3(tmp_path / "resumed", monkeypatch, *xl)
    resumed = train(config(tmp_path / "resumed", *xl))
    expected, got = adapter_weights(straight.last_adapter), adapter_weights(resumed.last_adapter)
    assert all(torch.equal(expected[key], got[key]) for key in expected)
    assert json.loads((straight.best_adapter / "config.json").read_text())["adapter_type"] == "full_adapter_xl"
    assert mlflow.get_run(straight.run_id).data.metrics["loss_z0"] > 0


def test_an_sdxl_base_with_an_sd1_adapter_type_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="SDXL base takes the full_xl adapter.*adapter=full_xl"):
        train(config(tmp_path, "base=tiny-xl"))
