"""One error hierarchy for the whole tool.

The core raises these; the CLI edge (`rexctl.cli.RexctlGroup`) turns each into one message on
stderr and its exit code. Exit codes are part of the interface and are documented in
docs/exit-codes.md.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    CHECK_FAILED = 1  # a verification, probe or drill check did not pass
    BAD_INPUT = 2  # bad flag, config file, environment or missing local prerequisite
    AWS_ERROR = 3  # AWS (or its stand-in) refused or failed a call
    FAULT_NOT_OBSERVED = 4  # a drill injected its fault but nothing observed it
    INTERRUPTED = 130  # Ctrl-C / SIGTERM (after any restore has run)


class RexctlError(Exception):
    """An expected failure: a message for the user and an exit code."""

    exit_code: ExitCode = ExitCode.BAD_INPUT

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class ConfigError(RexctlError):
    """Bad configuration: file, environment variable or flag."""

    exit_code = ExitCode.BAD_INPUT


class UsageError(RexctlError):
    """Bad input on the command line, or a local prerequisite missing."""

    exit_code = ExitCode.BAD_INPUT


class StateError(RexctlError):
    """rexctl's own state (drill journals, the drill lock) cannot be written or is in use."""

    exit_code = ExitCode.BAD_INPUT


class AwsError(RexctlError):
    """An AWS API call failed; the message says which and what to do."""

    exit_code = ExitCode.AWS_ERROR


class CheckFailed(RexctlError):
    """A check ran and did not pass (probe, verify, drill verdict)."""

    exit_code = ExitCode.CHECK_FAILED


class FaultNotObserved(RexctlError):
    """A drill injected its fault and restored it, but nothing showed the fault."""

    exit_code = ExitCode.FAULT_NOT_OBSERVED


class Interrupted(RexctlError):
    """The user interrupted the command (after everything was put back)."""

    exit_code = ExitCode.INTERRUPTED


_BY_CODE: dict[ExitCode, type[RexctlError]] = {
    ExitCode.CHECK_FAILED: CheckFailed,
    ExitCode.BAD_INPUT: UsageError,
    ExitCode.AWS_ERROR: AwsError,
    ExitCode.FAULT_NOT_OBSERVED: FaultNotObserved,
    ExitCode.INTERRUPTED: Interrupted,
}


def error_for(code: int, message: str, *, hint: str | None = None) -> RexctlError:
    """The error of the hierarchy that carries exit code `code`, for a core result (a drill's
    record) that already decided how it ended."""
    return _BY_CODE.get(ExitCode(code), RexctlError)(message, hint=hint)
