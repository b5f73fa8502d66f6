"""Find and read suite files: shipped in the `suites` package (works from a wheel install too) or any YAML path."""

from importlib import resources
from pathlib import Path

import yaml


class SuiteError(ValueError):
    """A suite that does not exist or cannot be read; the message names the file and what was expected."""


def available_suites() -> list[str]:
    return sorted(entry.name.removesuffix(".yaml") for entry in resources.files("suites").iterdir() if entry.name.endswith(".yaml"))


def suite_file(name_or_path: str):
    """A shipped suite by name, or a YAML file by path."""
    if name_or_path.endswith((".yaml", ".yml")):
        if not Path(name_or_path).is_file():
            raise SuiteError(f"suite file {name_or_path} does not exist")
        return Path(name_or_path)
    entry = resources.files("suites") / f"{name_or_path}.yaml"
    if not entry.is_file():
        raise SuiteError(f"unknown suite '{name_or_path}'; shipped suites: {', '.join(available_suites())} (or give a .yaml path)")
    return entry


def read_suite(name_or_path: str) -> dict:
    """The raw mapping of a suite (parsed with yaml.safe_load: data only, no Python objects)."""
    entry = suite_file(name_or_path)
    name = Path(str(entry)).stem
    try:
        data = yaml.safe_load(entry.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise SuiteError(f"suite file {entry} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise SuiteError(f"suite file {entry}: expected a mapping at the top level, got {type(data).__name__}")
    if data.get("name") != name:
        raise SuiteError(f"suite file {entry}: key 'name' must be '{name}' (the file's name), got {data.get('name')!r}")
    return data


def load_suite(name_or_path: str):
    """The validated suite (bench.suite_schema.Suite)."""
    from bench.suite_schema import parse_suite

    return parse_suite(read_suite(name_or_path), suite_file(name_or_path))
