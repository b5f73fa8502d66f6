"""Find and read the suite files shipped in the `suites` package (works from a wheel install too)."""

from importlib import resources

import yaml


class SuiteError(ValueError):
    """A suite that does not exist or cannot be read; the message names the file and what was expected."""


def available_suites() -> list[str]:
    return sorted(entry.name.removesuffix(".yaml") for entry in resources.files("suites").iterdir() if entry.name.endswith(".yaml"))


def read_suite(name: str) -> dict:
    """The raw mapping of shipped suite `name` (parsed with yaml.safe_load: data only, no Python objects)."""
    entry = resources.files("suites") / f"{name}.yaml"
    if not entry.is_file():
        raise SuiteError(f"unknown suite '{name}'; shipped suites: {', '.join(available_suites())}")
    try:
        data = yaml.safe_load(entry.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise SuiteError(f"suite file {entry} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise SuiteError(f"suite file {entry}: expected a mapping at the top level, got {type(data).__name__}")
    if data.get("name") != name:
        raise SuiteError(f"suite file {entry}: key 'name' must be '{name}' (the file's name), got {data.get('name')!r}")
    return data
