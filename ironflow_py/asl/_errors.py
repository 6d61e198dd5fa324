"""The errors of the ASL subsystem: a definition that does not validate, and a state's runtime failure."""

from __future__ import annotations

from ironflow_py.errors import IronflowError

#: Error names the States Language defines (https://states-language.net/spec.html, Appendix A).
ALL = "States.ALL"
TASK_FAILED = "States.TaskFailed"
RUNTIME = "States.Runtime"
TIMEOUT = "States.Timeout"
HEARTBEAT_TIMEOUT = "States.HeartbeatTimeout"
NO_CHOICE_MATCHED = "States.NoChoiceMatched"
DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"
INTRINSIC_FAILURE = "States.IntrinsicFailure"
RESULT_PATH_MATCH_FAILURE = "States.ResultPathMatchFailure"
PARAMETER_PATH_FAILURE = "States.ParameterPathFailure"
EXCEED_TOLERATED_FAILURE = "States.ExceedToleratedFailureThreshold"

#: Errors that `States.ALL` and `States.TaskFailed` never match: they end the execution unless a
#: retrier or catcher names them explicitly (AWS: "a retry or catch on States.ALL won't catch
#: States.Runtime errors"; DataLimitExceeded is "a terminal error that can't be caught by States.ALL").
TERMINAL = frozenset({RUNTIME, DATA_LIMIT_EXCEEDED})


class AslValidationError(IronflowError):
    """A state machine definition breaks the States Language rules; names the JSON pointer of the field.

    Args:
        pointer: the RFC 6901 JSON pointer of the offending field, e.g. ``/States/Charge/Next``.
        message: what is wrong with it.
    """

    def __init__(self, pointer: str, message: str) -> None:
        self.pointer = pointer
        self.message = message
        super().__init__(f"{pointer or '/'}: {message}")


class TaskFailed(Exception):
    """Raise in a task handler to fail the Task state with an ASL error name and cause.

    Retry and Catch rules match `error`; `cause` is carried to the error output (`{"Error", "Cause"}`).

    Args:
        error: the error name, e.g. ``"Payment.Declined"``; must not start with ``States.``.
        cause: a human-readable cause (any string).
    """

    def __init__(self, error: str, cause: str = "") -> None:
        self.error = error
        self.cause = cause
        super().__init__(f"{error}: {cause}" if cause else error)


class StateError(Exception):
    """A state failed at run time with an ASL error name and cause (a path matched nothing, a bad type)."""

    def __init__(self, error: str, cause: str) -> None:
        self.error = error
        self.cause = cause
        super().__init__(f"{error}: {cause}")
