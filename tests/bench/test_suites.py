import pytest

from bench.suite import SuiteError, available_suites, read_suite


def test_shipped_suites_are_listed_and_readable():
    assert "smoke" in available_suites()
    assert read_suite("smoke")["base"] == "tiny"


def test_unknown_suite_names_the_shipped_ones():
    with pytest.raises(SuiteError, match="unknown suite 'nope'; shipped suites: .*smoke"):
        read_suite("nope")


def test_every_shipped_suite_validates():
    from bench.suite import load_suite

    for name in available_suites():
        suite = load_suite(name)
        assert suite.name == name and suite.methods


def test_schema_errors_name_the_source_and_the_key_path():
    from bench.suite import parse_suite

    base = {"name": "x", "methods": {"text-only": {"kind": "text-only"}}}
    with pytest.raises(SuiteError, match=r"x\.yaml: methods\.a: Value error, an adapter method needs exactly one of 'weights' or 'train'"):
        parse_suite(base | {"methods": {"text-only": {"kind": "text-only"}, "a": {"kind": "adapter"}}}, "x.yaml")
    with pytest.raises(SuiteError, match=r"\(top level\): Value error, metrics.preservation.reference_method .text-only. must name a text-only method"):
        parse_suite(base | {"methods": {"text-only": {"kind": "adapter", "weights": "random"}}}, "x.yaml")
    with pytest.raises(SuiteError, match=r"sampler\.scheduler: Input should be 'ddim', 'ddpm', 'pndm', 'euler', 'euler-a' or 'dpm\+\+'"):
        parse_suite(base | {"sampler": {"scheduler": "heun"}, "metrics": {"preservation": None}}, "x.yaml")
    with pytest.raises(SuiteError, match=r"seeds\.0: Input should be a valid integer"):
        parse_suite(base | {"seeds": ["zero"]}, "x.yaml")


def test_a_suite_embeds_sampler_settings_over_its_own_defaults_and_checks_training_configs_up_front():
    from bench.suite import SUITE_SAMPLER, parse_suite

    base = {"name": "x", "methods": {"text-only": {"kind": "text-only"}}}
    sampler = parse_suite(base | {"sampler": {"steps": 7, "negative_prompt": "blurry"}}, "x.yaml").sampler
    assert (sampler.steps, sampler.guidance, sampler.batch_size, sampler.negative_prompt) == (7, SUITE_SAMPLER["guidance"],
                                                                                             SUITE_SAMPLER["batch_size"], "blurry")
    trained = base | {"methods": {"text-only": {"kind": "text-only"}, "m": {"kind": "adapter", "train": {"z0.wieght": 1}}}}
    with pytest.raises(SuiteError, match=r"x\.yaml: methods\.m\.train: z0\.wieght: Extra inputs are not permitted"):
        parse_suite(trained, "x.yaml")
    with pytest.raises(SuiteError, match=r"x\.yaml: train_defaults: steps: Input should be greater than or equal to 1"):
        parse_suite(base | {"train_defaults": {"steps": 0}}, "x.yaml")
    suite = parse_suite(base | {"train_defaults": {"steps": 3}, "condition": "colour-grid",
                                "methods": {"text-only": {"kind": "text-only"}, "m": {"kind": "adapter", "train": {"z0.weight": 0.2}}}}, "x.yaml")
    config = suite.train_config("m")  # the suite's base, condition and data, then train_defaults, then the method's keys
    assert (config.base, config.condition, config.steps, config.z0.weight, config.data.source) == ("shapes-base", "colour-grid", 3, 0.2,
                                                                                                   "shapes")
