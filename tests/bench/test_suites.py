import pytest

from bench.suite import SuiteError, read_suite
from suites import available_suites


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
    with pytest.raises(SuiteError, match=r"sampler\.scheduler: Input should be 'ddim', 'ddpm', 'pndm', 'euler', 'euler-a', 'dpm\+\+' or 'unipc'"):
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


def test_an_unknown_shapes_split_is_refused_when_the_suite_is_read_not_looped_on(tmp_path):
    from bench.suite import parse_suite

    base = {"name": "x", "methods": {"text-only": {"kind": "text-only"}}}
    with pytest.raises(SuiteError, match=r"data\.split: the shapes world's splits are train, val, test, not 'validation'"):
        parse_suite(base | {"data": {"source": "shapes", "split": "validation"}}, "x.yaml")


def test_names_that_become_paths_and_tags_are_checked_up_front():
    from bench.suite import parse_suite

    for methods in ({"../../../X": {"kind": "text-only"}}, {"it's": {"kind": "text-only"}}):
        with pytest.raises(SuiteError, match="methods: .* must be letters, digits"):
            parse_suite({"name": "x", "methods": methods, "metrics": {"preservation": None}}, "x.yaml")
    with pytest.raises(SuiteError, match="name: 'a/b' must be letters"):
        parse_suite({"name": "a/b", "methods": {"text-only": {"kind": "text-only"}}}, "x.yaml")


def test_a_yaml_alias_bomb_is_refused_in_a_suite_file(tmp_path):
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]"
                                                     for p, c in zip("abcdefgh", "bcdefghi")]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("name: bomb\nmethods: {text-only: {kind: text-only}}\ntrain_defaults:\n" + "".join(f"  {line}\n" for line in levels))
    with pytest.raises(SuiteError, match="bomb.yaml is not valid YAML: .*aliases"):
        read_suite(str(bomb))


def test_a_method_may_sample_with_its_own_scheduler_and_steps_and_bench_steps_overrides_them_all():
    """ControlNet++ sampled its T2I-Adapter rows with 50 PNDM steps and its ControlNets with 20 UniPC ones."""
    from types import SimpleNamespace

    from bench.keys import sampler_key
    from bench.run import BenchOptions, resolve
    from bench.stages.plan import Task, chunks
    from bench.suite import load_suite

    suite = load_suite("controlnetpp-canny-sd15")
    adapter, controlnet = (suite.sampler_for(suite.methods[name]) for name in ("global", "controlnet"))
    assert (adapter.scheduler, adapter.steps, controlnet.scheduler, controlnet.steps) == ("pndm", 50, "unipc", 20)
    assert sampler_key(adapter) != sampler_key(controlnet)  # their images are keyed apart
    methods = {name: SimpleNamespace(spec=spec) for name, spec in suite.methods.items()}
    tasks = [Task(name, item, 0, f"{name}{item}", None) for item in range(3) for name in ("text-only", "global", "controlnet")]
    batches = chunks(tasks, 4, methods)
    assert [[t.method for t in batch] for batch in batches] == [["text-only", "global", "text-only", "global"],
                                                               ["text-only", "global"], ["controlnet"] * 3]
    quick = resolve("controlnetpp-canny-sd15", BenchOptions(steps=2))
    assert {quick.sampler_for(spec).steps for spec in quick.methods.values()} == {2}
    assert quick.sampler_for(quick.methods["controlnet"]).scheduler == "unipc"  # --steps leaves schedulers alone


@pytest.mark.parametrize("method, expected", [
    ({"kind": "adapter", "weights": "random", "local": "inpaint"}, "needs kind 'controlnet'"),
    ({"kind": "controlnet", "weights": "random", "local": "inpaint", "steps": 7}, "samples as 'text-only' does"),
])
def test_an_inpainting_method_is_a_controlnet_that_samples_as_its_reference(tmp_path, method, expected):
    from bench.suite import parse_suite

    data = read_suite("smoke") | {"methods": {"text-only": {"kind": "text-only"}, "inpaint": method}}
    with pytest.raises(SuiteError, match=expected):
        parse_suite(data, tmp_path / "s.yaml")
    with pytest.raises(SuiteError, match="needs metrics.preservation"):
        parse_suite(read_suite("smoke") | {"methods": {"text-only": {"kind": "text-only"},
                                                       "inpaint": {"kind": "controlnet", "weights": "random", "local": "inpaint"}},
                                           "metrics": {**read_suite("smoke")["metrics"], "preservation": None}}, tmp_path / "s.yaml")
