import pytest

from bench.suites import SuiteError, available_suites, read_suite


def test_shipped_suites_are_listed_and_readable():
    assert "smoke" in available_suites()
    assert read_suite("smoke")["base"] == "tiny"


def test_unknown_suite_names_the_shipped_ones():
    with pytest.raises(SuiteError, match="unknown suite 'nope'; shipped suites: .*smoke"):
        read_suite("nope")
