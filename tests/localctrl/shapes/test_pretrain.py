"""shapes-base pretraining: an interrupted run resumes to exactly the weights of an uninterrupted one."""

import mlflow
import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline

import localctrl.shapes.pretrain as pretrain_module
from localctrl.models.stacks import load_stack
from localctrl.shapes.pretrain import PretrainConfig, pretrain

SMALL = PretrainConfig(train_items=64, vae_steps=6, vae_batch=4, unet_steps=6, unet_batch=4, checkpoint_every=3, log_every=3, warmup_steps=2)


def weights(folder):
    stack = load_stack(folder)
    return {f"{name}.{key}": value for name, module in stack.modules().items() for key, value in module.state_dict().items()}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return pretrain(tmp_path_factory.mktemp("straight"), SMALL)


@pytest.mark.parametrize("phase", ["vae", "unet"])
def test_an_interrupted_run_resumes_to_the_same_weights(uninterrupted, tmp_path, monkeypatch, phase):
    real_generator = pretrain_module.step_generator

    def killed_at_step_4(seed, name, step):
        if name == phase and step == 4:  # after the checkpoint at step 3
            raise KeyboardInterrupt
        return real_generator(seed, name, step)

    monkeypatch.setattr(pretrain_module, "step_generator", killed_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        pretrain(tmp_path, SMALL)
    monkeypatch.setattr(pretrain_module, "step_generator", real_generator)
    resumed = pretrain(tmp_path, SMALL)

    expected, got = weights(uninterrupted), weights(resumed)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    runs = mlflow.search_runs(experiment_names=[pretrain_module.EXPERIMENT])
    assert len(runs) == 1  # the resumed run continued its own run instead of starting another


def test_resuming_with_another_config_is_refused(uninterrupted):
    with pytest.raises(ValueError, match="unet_steps: was 6, now 7"):
        pretrain(uninterrupted.parent, PretrainConfig(**{**SMALL.__dict__, "unet_steps": 7}))


def test_the_export_loads_in_stock_diffusers_and_generates_64px_images(uninterrupted):
    pipeline = StableDiffusionPipeline.from_pretrained(uninterrupted)
    images = pipeline("a red circle on a grey background", num_inference_steps=2, output_type="np",
                      generator=torch.Generator().manual_seed(0)).images
    assert images.shape == (1, 64, 64, 3) and np.isfinite(images).all()
    assert len(pipeline.tokenizer.tokenize("an orange triangle and a blue square on a white gradient background")) == 12  # one token per word
