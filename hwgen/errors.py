"""The package's one error type: the CLI prints it as one line and exits 1."""


class HwgenError(Exception):
    """A user-facing problem: the message names what is wrong and how to fix it."""


class UnsupportedOpError(HwgenError):
    pass


class ModelFileError(HwgenError):
    pass


class PlanError(HwgenError):
    pass


class ApproximationWarning(UserWarning):
    """hwgen runs something close to, not exactly, what the model says (the warning names the layer)."""
