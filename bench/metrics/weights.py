"""Find a metric's pretrained weights on disk through bench.pretrained's list, or raise MetricUnavailable."""

from pathlib import Path

from bench.metrics.errors import MetricUnavailable
from bench.pretrained import METRIC_COMPONENTS


def require(component_name: str) -> Path:
    """Local path of the METRIC_COMPONENTS entry called `component_name` (only looks; never downloads)."""
    component = next((c for c in METRIC_COMPONENTS if c.name == component_name), None)
    if component is None:  # a programming error, not a missing file: name what exists
        raise KeyError(f"no metric component '{component_name}'; known: {[c.name for c in METRIC_COMPONENTS]}")
    path = component.locate()
    if path is None:
        raise MetricUnavailable(f"{component.used_for} ({component.name})", component.source, component.how)
    return path
