import pytest

from bench.suites import SuiteError, available_suites, read_suite


def test_shipped_suites_are_listed_and_readable():
    assert "smoke" in available_suites()
    assert read_suite("smoke")["base"] == "tiny"


def test_unknown_suite_names_the_shipped_ones():
    with pytest.raises(SuiteError, match="unknown suite 'nope'; shipped suites: .*smoke"):
        read_suite("nope")


def test_every_shipped_suite_validates():
    from bench.suites import load_suite

    for name in available_suites():
        suite = load_suite(name)
        assert suite.name == name and suite.methods


def test_schema_errors_name_the_source_and_the_key_path():
    from bench.suite_schema import parse_suite

    base = {"name": "x", "methods": {"text-only": {"kind": "text-only"}}}
    with pytest.raises(SuiteError, match=r"x\.yaml: methods\.a: Value error, an adapter method needs exactly one of 'weights' or 'train'"):
        parse_suite(base | {"methods": {"text-only": {"kind": "text-only"}, "a": {"kind": "adapter"}}}, "x.yaml")
    with pytest.raises(SuiteError, match=r"\(top level\): Value error, metrics.preservation.reference_method .text-only. must name a text-only method"):
        parse_suite(base | {"methods": {"text-only": {"kind": "adapter", "weights": "random"}}}, "x.yaml")
    with pytest.raises(SuiteError, match=r"sampler: Value error, scheduler 'heun' is not one of"):
        parse_suite(base | {"sampler": {"scheduler": "heun"}, "metrics": {"preservation": None}}, "x.yaml")
    with pytest.raises(SuiteError, match=r"seeds\.0: Input should be a valid integer"):
        parse_suite(base | {"seeds": ["zero"]}, "x.yaml")
