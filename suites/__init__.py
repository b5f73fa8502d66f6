"""Benchmark suite definitions (YAML data files shipped with the package; see bench.suite)."""
