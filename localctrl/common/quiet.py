"""Library messages a user cannot act on, filtered where they arise (each named here, with why it is noise)."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager


class DropMessages(logging.Filter):
    """Drops records whose message contains one of `parts`."""

    def __init__(self, *parts: str):
        super().__init__()
        self.parts = parts

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(part in message for part in self.parts)


@contextmanager
def dropped(logger: str | None, *parts: str) -> Iterator[None]:
    """Within the block, `logger`'s (None: the root logger's) records containing one of `parts` are dropped."""
    target, drop = logging.getLogger(logger), DropMessages(*parts)
    target.addFilter(drop)
    try:
        yield
    finally:
        target.removeFilter(drop)


def install() -> None:
    """The process-wide filters of the command line."""
    # diffusers warns on every dtype cast of a model that lists fp32 modules, also when the list is empty (it is for
    # every model we cast: frozen modules to bf16/fp16 under mixed precision); nothing is kept in fp32, so nothing is wrong.
    logging.getLogger("diffusers.models.modeling_utils").addFilter(DropMessages("should be kept in float32: []"))
