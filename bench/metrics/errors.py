"""The one error a metric raises when it cannot be computed as named (missing weights): never a silent substitute."""


class MetricUnavailable(RuntimeError):
    """A metric whose pretrained weights are not on this machine. The message names the file and how to supply it."""

    def __init__(self, metric: str, missing: str, how: str):
        self.metric, self.missing, self.how = metric, missing, how
        super().__init__(f"{metric} is unavailable: {missing} was not found. To provide it: {how}. "
                         "(Nothing is downloaded; a random-weight network is used only when its name says so.)")
