"""Timed measurements that say how far to trust them, and goals judged only when the numbers can decide them.

Every timing warms up first, then repeats until its spread is small (`TARGET_SPREAD`) or its repeats or seconds run
out; it keeps every repeat (min, median, spread = (max − min) / median). A ratio of two timings taken apart carries the
sum of their spreads, a conservative bound on its own; alternatives timed side by side in interleaved rounds give a
ratio in every round, and the ratio is those rounds' median with their spread (what slowed the machine for a round
slowed both sides of it, and cancels). A goal is called met or missed only when the ratio's distance from the
goal's bound is larger than that spread; otherwise it is "undecided", never a verdict the noise could have flipped.
Written here rather than taken from timeit or pytest-benchmark: the GPU needs a synchronise around every repeat, and
the perf JSON keeps every repeat beside the verdict.
"""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from bench.perf.flops import synchronize

TARGET_SPREAD = 0.05  # stop repeating once (max − min) / median is at most this
QUICK_REPEATS = {"min_repeats": 2, "max_repeats": 2}  # --quick: the code path, not the numbers
QUICK_NOTE = "--quick: these numbers check that perf runs; they are not for reading (no goal is judged)"


@dataclass(frozen=True)
class Timing:
    seconds: tuple[float, ...]  # every timed repeat, in order

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def min(self) -> float:
        return min(self.seconds)

    @property
    def spread(self) -> float:
        """(max − min) / median of the repeats; infinite for a single repeat, which says nothing about its noise."""
        return (max(self.seconds) - self.min) / self.median if len(self.seconds) > 1 else float("inf")

    def summary(self) -> dict:
        return {"seconds": self.median, "seconds_min": self.min, "spread": self.spread, "repeats": len(self.seconds),
                "seconds_all": list(self.seconds)}


def measure(run: Callable[[], None], warmup: Callable[[], None] | None = None, device: torch.device | None = None,
            min_repeats: int = 3, max_repeats: int = 10, budget_s: float = 20.0,
            clock: Callable[[], float] = time.perf_counter) -> Timing:
    """Time `run()` after one `warmup()` (default: `run` itself), repeating it until `min_repeats` are done and the
    spread is at most TARGET_SPREAD, or `max_repeats` are done, or `budget_s` seconds are spent after two repeats."""
    return measure_side_by_side({"run": run}, {"run": warmup} if warmup else None, device, min_repeats, max_repeats, budget_s,
                                clock)["run"]


def measure_side_by_side(runs: dict[str, Callable[[], None]], warmups: dict[str, Callable[[], None]] | None = None,
                         device: torch.device | None = None, min_repeats: int = 3, max_repeats: int = 10, budget_s: float = 20.0,
                         clock: Callable[[], float] = time.perf_counter) -> dict[str, Timing]:
    """`measure` for alternatives compared with each other, their repeats interleaved (A B C A B C …) under `measure`'s
    rules, applied to all of them (steady: every spread at most TARGET_SPREAD). A machine that slows down for a while
    (another job on a shared one) then slows every alternative, not the one that happened to be running: the ratios stay
    honest, and the spreads show the disturbance."""
    device = device or torch.device("cpu")
    for name, run in runs.items():
        ((warmups or {}).get(name) or run)()
    synchronize(device)
    walls: dict[str, list[float]] = {name: [] for name in runs}
    started = clock()
    while True:
        for name, run in runs.items():
            tic = clock()
            run()
            synchronize(device)
            walls[name].append(clock() - tic)
        timings = {name: Timing(tuple(seconds)) for name, seconds in walls.items()}
        done = len(walls[next(iter(runs))])
        if done >= max_repeats or (done >= min_repeats and all(t.spread <= TARGET_SPREAD for t in timings.values())):
            return timings
        if done >= 2 and clock() - started >= budget_s:
            return timings


def rate_ratio(row: dict, other: dict) -> dict:
    """How many times `row`'s images/s `other`'s is (medians), with the spread of that ratio (the sum of both spreads)."""
    return {"value": row["images_per_s"] / other["images_per_s"], "spread": row["spread"] + other["spread"]}


def paired_ratio(mine: Timing, theirs: Timing) -> dict:
    """How many times faster `mine` ran than `theirs`, timed in the same interleaved rounds (`measure_side_by_side`):
    the median of the rounds' ratios (theirs ÷ mine), their spread, and every round's ratio."""
    rounds = [their / my for my, their in zip(mine.seconds, theirs.seconds)]
    return {"value": statistics.median(rounds), "spread": Timing(tuple(rounds)).spread, "per_round": rounds}


def judge(value: float, spread: float, floor: float | None = None, ceiling: float | None = None, quick: bool = False) -> dict:
    """A goal's verdict: met / missed when |value − bound| / bound exceeds the spread, else undecided (met: None)."""
    bound = floor if floor is not None else ceiling
    margin = abs(value - bound) / bound
    passes = value >= bound if floor is not None else value < bound
    decided = not quick and spread < margin
    goal = {"value": value, "spread": spread, "margin": margin, "met": passes if decided else None}
    return goal | ({"floor": floor} if floor is not None else {"ceiling": ceiling})


def goal_lines(goals: dict, quick: bool = False) -> list[str]:
    lines = []
    for name, goal in goals.items():
        bound = f"≥ {goal['floor']}" if "floor" in goal else f"< {goal['ceiling']}"
        if quick:
            verdict = "not judged (--quick)"
        elif goal["met"] is None:
            verdict = f"undecided: its spread ±{goal['spread']:.0%} is larger than its distance to the bound ({goal['margin']:.0%})"
        else:
            verdict = "met" if goal["met"] else "NOT met"
        lines.append(f"goal {name}: {goal['value']:.2f} ±{goal['spread']:.0%} (want {bound}) {verdict}")
    return lines


def with_spread(value: float, spread: float) -> str:
    """A number as the tables print it: the value (three significant digits below 1) and its relative spread."""
    shown = f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    return f"{shown} ±{spread:.0%}" if spread != float("inf") else f"{shown} (1 run)"
