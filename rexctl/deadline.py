"""A deadline on a whole operation, whatever it is blocked on.

A socket timeout bounds one read, not an operation: a server that trickles its answer a byte at
a time, or an endpoint that accepts a connection and never answers while botocore retries, can
hold a caller for as long as it likes. `within` runs the operation on a worker thread and waits
for it at most `seconds`; at the deadline the caller goes on with `DeadlineExceeded`, and the
worker is left to end on its own (so the operation should also give up soon after its deadline:
`rexctl.probe.probe_once` checks it between the chunks of a body, AWS clients have bounded
timeouts and retries). The wait is interruptible: a signal handler that raises (a drill's
Ctrl-C) ends it at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from rexctl.errors import AwsError

T = TypeVar("T")


class DeadlineExceeded(AwsError):
    """An operation did not finish within its deadline (exit code 3, as an AWS failure)."""


def within(seconds: float, operation: Callable[[], T], what: str = "the operation") -> T:
    """`operation()`, or DeadlineExceeded once `seconds` have passed without it finishing."""
    result: list[T] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def work() -> None:
        try:
            result.append(operation())
        except BaseException as exc:  # handed to the caller
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=work, name="rexctl-deadline", daemon=True).start()
    if not done.wait(max(0.0, seconds)):
        raise DeadlineExceeded(f"{what} did not finish within {seconds:.1f} s")
    if failure:
        raise failure[0]
    return result[0]
