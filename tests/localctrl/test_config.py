"""One config system: settings from defaults, YAML and overrides, applied in order, with errors naming the key path."""

import pytest

from localctrl.config import SamplerSettings, TrainConfig, load_train_config, train_config
from localctrl.errors import InputError


def test_layers_apply_in_order_over_the_defaults():
    config = train_config({"z0": {"weight": 0.5, "filter": "laplacian"}}, {"z0.weight": 0.1}, {"steps": 3})
    assert (config.z0.weight, config.z0.filter, config.steps) == (0.1, "laplacian", 3)
    assert train_config({"z0.weight": 0.1}, {"z0": {"filter": "none"}}).z0.weight == TrainConfig().z0.weight  # a section replaces
    assert train_config() == TrainConfig()


def test_yaml_and_overrides(tmp_path):
    (tmp_path / "run.yaml").write_text("steps: 7\nz0: {weight: 0.01}\nmasks: {kinds: {box: 1, blob: 1}}\n")
    config = load_train_config(tmp_path / "run.yaml", ["z0.filter=none", "optim.lr=1e-4", "masks.resize=max"])
    assert (config.steps, config.z0.weight, config.z0.filter, config.optim.lr, config.masks.resize) == (7, 0.01, "none", 1e-4, "max")
    assert config.masks.kinds == {"box": 1.0, "blob": 1.0}


@pytest.mark.parametrize(("overrides", "message"), [
    (["z0.wieght=1"], "defaults: z0.wieght: Extra inputs are not permitted"),
    (["z0.filter=canny"], "z0.filter: Input should be 'sobel', 'laplacian' or 'none'"),
    (["masks.min_area=0.6", "masks.max_area=0.5"], "masks: Value error, min_area 0.6 is larger than max_area 0.5"),
    (["condition=sketch"], "condition: Input should be 'canny', 'canny-opencv', 'colour-grid', 'edges', 'seg' or 'depth'"),
    (["steps"], "override 'steps' must look like key.sub=value"),
])
def test_errors_name_the_key_path_and_what_was_expected(overrides, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_train_config(overrides=overrides)


def test_a_config_file_that_is_not_yaml_or_not_a_mapping_is_refused(tmp_path):
    (tmp_path / "list.yaml").write_text("- steps: 1\n")
    with pytest.raises(InputError, match="list.yaml: expected a mapping of settings, got list"):
        load_train_config(tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("steps: [1, 2\n")
    with pytest.raises(InputError, match="bad.yaml is not valid YAML"):
        load_train_config(tmp_path / "bad.yaml")


def test_sampler_settings_are_frozen_and_validated():
    settings = SamplerSettings(steps=4)
    with pytest.raises(ValueError):
        settings.steps = 5  # one object shared by sampler calls: never changed under them
    with pytest.raises(ValueError, match="conditioning_factor"):
        SamplerSettings(conditioning_factor=1.5)
    assert settings.model_copy(update={"batch_size": 2}).batch_size == 2 and settings.batch_size == 16


@pytest.mark.parametrize("override", ["optim.lr=.inf", "optim.lr=.nan", "caption_dropout=.nan", "z0.weight=.inf"])
def test_numbers_must_be_finite(override):
    with pytest.raises(InputError, match="Input should be a finite number"):
        load_train_config(overrides=[override])


def test_broken_yaml_in_an_override_names_the_override():
    with pytest.raises(InputError, match=r"override 'steps=\[1,' is not valid YAML"):
        load_train_config(overrides=["steps=[1,"])
