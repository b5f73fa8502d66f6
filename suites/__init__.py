"""Benchmark suite definitions (YAML data files shipped with the package; see bench.suite)."""

from importlib import resources


def available_suites() -> list[str]:
    """The shipped suites' names (light to import: the CLI's help lists them)."""
    return sorted(entry.name.removesuffix(".yaml") for entry in resources.files(__name__).iterdir() if entry.name.endswith(".yaml"))
