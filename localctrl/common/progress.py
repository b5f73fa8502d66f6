"""Progress display shared by the long steps (training, generation, detection, scoring): rich progress bars."""

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text


class NoteColumn(ProgressColumn):
    """The task's `note` field (a loss, a rate), empty for tasks without one."""

    def render(self, task) -> Text:
        return Text(str(task.fields.get("note", "")))


def progress_bar(console: Console | None = None, disable: bool = False) -> Progress:
    """One bar per task: description, bar, done/total, time left, and the task's `note` field (a loss, a rate)."""
    return Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), NoteColumn(),
                    console=console, disable=disable)


class StepBar:
    """A task on a progress display that advances one step at a time and shows the latest note."""

    def __init__(self, progress: Progress, description: str, total: int, completed: int):
        self.progress, self.description, self.note = progress, description, ""
        self.task = progress.add_task(description, total=total, completed=completed, note="")

    def advance(self, note: str | None = None) -> None:
        self.note = note if note is not None else self.note
        self.progress.update(self.task, advance=1, note=self.note)

    def show(self, note: str) -> None:
        self.note = note
        self.progress.update(self.task, note=note)

    def summary(self) -> str:
        task = next(task for task in self.progress.tasks if task.id == self.task)
        return f"{self.description}: {task.completed:.0f}/{task.total:.0f} steps in {task.elapsed or 0:.0f} s" + \
            (f" ({self.note})" if self.note else "")


@contextmanager
def step_bar(progress: Progress | None, description: str, total: int, completed: int = 0, enabled: bool = True) -> Iterator[StepBar]:
    """A StepBar on `progress` (the caller's display, e.g. the bench's), or on a display of its own that ends with the
    block; `enabled=False` (a DDP helper process) shows nothing."""
    if progress is not None:
        bar = StepBar(progress, description, total, completed)
        yield bar
        progress.console.print(bar.summary())  # a line that stays (also in a log file, where bars are not drawn)
        progress.remove_task(bar.task)  # the caller's display goes on with its own tasks
        return
    with progress_bar(disable=not enabled) as own:
        yield StepBar(own, description, total, completed)
