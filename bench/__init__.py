"""Measuring: suites, the generation/detection/scoring pipeline, metrics and their MLflow logging."""
