"""One `localctrl bench` invocation: its options, the suite they resolve to, and what it returns.

Apart from the pipeline (bench.run) so that a rerun with nothing to compute (bench.finished) needs no model code.
"""

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field

from bench.suite import Suite, SuiteError, load_suite
from localctrl.config import Section


class BenchOptions(Section):
    limit: int | None = None
    methods: list[str] | None = None
    dry_run: bool = False
    shard: tuple[int, int] | None = None
    device: str = "cpu"
    out: Path | None = None  # default: localctrl-runs/bench/<suite>
    cache: Path = Path("localctrl-runs/bench-cache")  # trained adapters, shared by suites
    base: str | None = None  # override the suite's base; "tiny", "tiny-xl" = mechanics mode (random stand-ins, named so)
    batch_size: int | None = None
    steps: int | None = Field(None, ge=1)  # sampler steps instead of the suite's (a quick rehearsal of a real suite)
    log: bool = True


@dataclass
class BenchResult:
    suite: Suite
    out: Path
    counts: dict[str, int]
    results: dict[str, dict] = field(default_factory=dict)
    run_id: str | None = None
    notes: list[str] = field(default_factory=list)  # what the run said about its metrics (substitutions, unreliable FID)


def output_folder(suite: Suite, options: BenchOptions) -> Path:
    return options.out or Path("localctrl-runs/bench") / suite.name


def resolve(name_or_path: str, options: BenchOptions) -> Suite:
    suite = load_suite(name_or_path)
    updates = {}
    if options.base:
        updates["base"] = options.base
    sampler = {"batch_size": options.batch_size, "steps": options.steps}
    if sampler := {key: value for key, value in sampler.items() if value}:
        updates["sampler"] = suite.sampler.model_copy(update=sampler)
    if options.steps:  # --steps is every method's: methods with steps of their own take it too
        updates["methods"] = {name: spec.model_copy(update={"steps": None}) for name, spec in suite.methods.items()}
    if options.methods:
        unknown = sorted(set(options.methods) - set(suite.methods))
        if unknown:
            raise SuiteError(f"--methods: {', '.join(unknown)} not in suite '{suite.name}' (it has {', '.join(suite.methods)})")
        reference = suite.metrics.preservation.reference_method if suite.metrics.preservation else None
        keep = [m for m in suite.methods if m in options.methods or m == reference]
        updates["methods"] = {m: updates.get("methods", suite.methods)[m] for m in keep}
    return suite.model_copy(update=updates)
