"""Translate botocore exceptions into rexctl errors with a message that says what to do.

Adapters wrap their calls in `aws_errors("describe the cache")`; the CLI edge also passes any
botocore exception that escaped through `translate`, so the user never sees a traceback.

"Not found", one way across `rexctl.aws`:

- `unless_missing(codes, doing, call)` is the only place that recognises a not-found answer: it
  runs `call()` like `aws_errors(doing)`, and returns None when AWS answers with one of `codes`
  (the error codes that mean "not there" for that call: `ReplicationGroupNotFoundFault`,
  `InvalidGroup.NotFound`, ...). Every other failure becomes a rexctl error as usual.
- Lookups that may miss (`find_*`, `get_*`, `entry_at`, ...) return None (or an empty list, or
  the missing ids) when the thing is not there; the caller decides what that means.
- Lookups whose thing must exist (`describe_*`, `vpc_of_*`, `search_events`) raise a RexctlError
  that says what is missing: a missing log group raises `logs.LogGroupNotFound` (an AwsError
  that `verify` catches), a missing task definition a UsageError, a missing ECS service an
  AwsError naming it, anything else the generic "Not found while trying to ..." of `translate`.
- Undoing something that is already undone is not an error: revoking a rule or deleting an ACL
  entry that is gone goes through `unless_missing` too (and re-authorizing a rule that is back
  checks `answered(exc, "InvalidPermission.Duplicate")`).

"Not found *yet*" is another answer: a resource just created may not be visible at once (EC2's
eventual consistency: `InvalidGroup.NotFound` right after CreateSecurityGroup). `eventually(...)`
retries such a call with exponential backoff, as AWS says to, for a bounded time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rexctl.errors import AwsError, ConfigError, RexctlError

T = TypeVar("T")

_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "InvalidClientTokenId"}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthFailure"}
_THROTTLED = {
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
}


def translate(exc: BaseException, doing: str = "") -> RexctlError:
    """A rexctl error for a botocore exception (or any exception raised while calling AWS)."""
    import botocore.exceptions as bce

    what = f" while trying to {doing}" if doing else ""
    if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError):
        return ConfigError(
            f"No AWS credentials were found{what}.",
            hint="Run `aws configure` or `aws sso login`, pass `--profile`, or export "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. For the local sandbox use `--sandbox`.",
        )
    if isinstance(exc, bce.NoRegionError):
        return ConfigError(
            f"No AWS region is set{what}.",
            hint="Pass `--region us-east-1`, set `region` in rexctl.toml, or export AWS_REGION.",
        )
    if isinstance(exc, bce.TokenRetrievalError | bce.SSOTokenLoadError):
        return AwsError(
            f"Your AWS SSO session has expired{what}.",
            hint="Run `aws sso login` (with your `--profile`) and try again.",
        )
    if isinstance(exc, bce.EndpointConnectionError):
        return AwsError(
            f"Cannot reach the AWS endpoint {exc.kwargs.get('endpoint_url', '')}{what}.",
            hint="Check the network, `--endpoint-url` / AWS_ENDPOINT_URL, and the region. "
            "For the sandbox, is it up (`rexctl sandbox status`)?",
        )
    if isinstance(exc, bce.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "")).strip()
        action = exc.operation_name
        if code in _EXPIRED:
            return AwsError(
                f"Your AWS credentials have expired or are not valid ({code}){what}.",
                hint="Refresh them (`aws sso login`, or new keys) and try again.",
            )
        if code in _DENIED:
            return AwsError(
                f"Access denied: your AWS identity may not call {action}{what}. {message}",
                hint=f"Ask for permission to call {action}, or use a profile that has it "
                "(`--profile`). docs/permissions.md lists every action rexctl uses.",
            )
        if code in _THROTTLED:
            return AwsError(
                f"AWS kept throttling {action}{what}, even after retries.",
                hint="Wait a minute and run the command again; it is safe to repeat.",
            )
        if (
            "NotFound" in code
            or code.endswith("NotFoundFault")
            or code == "ResourceNotFoundException"
        ):
            return AwsError(
                f"Not found{what}: {message or code}.",
                hint="Check the names in rexctl.toml and the region (`--region`).",
            )
        return AwsError(f"AWS {action} failed{what}: {code}: {message}")
    import botocore.parsers

    if isinstance(exc, botocore.parsers.ResponseParserError):
        return AwsError(
            f"The AWS endpoint gave an answer rexctl could not read{what}.",
            hint="Against real AWS, run the command again. Against moto or the sandbox, this "
            "action may not be emulated (see docs/sandbox.md).",
        )
    if isinstance(exc, bce.BotoCoreError):
        return AwsError(f"AWS call failed{what}: {exc}")
    return AwsError(f"AWS call failed{what}: {exc}")


@contextmanager
def aws_errors(doing: str) -> Iterator[None]:
    """Run AWS calls; any botocore exception becomes a rexctl error naming what we were doing."""
    import botocore.exceptions as bce
    import botocore.parsers

    try:
        yield
    except (bce.BotoCoreError, bce.ClientError, botocore.parsers.ResponseParserError) as exc:
        # ResponseParserError: what an endpoint answering garbage (or HTTP 500) produces.
        raise translate(exc, doing) from exc


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError ('' for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def answered(exc: BaseException, codes: str | Collection[str]) -> bool:
    """Whether `exc` is AWS answering with one of the error `codes`: a botocore ClientError, or
    the rexctl error `aws_errors` made of one (it keeps the ClientError as `__cause__`)."""
    wanted = {codes} if isinstance(codes, str) else set(codes)
    code = error_code(exc)
    if not code and exc.__cause__ is not None:
        code = error_code(exc.__cause__)
    return bool(code) and code in wanted


def unless_missing(codes: str | Collection[str], doing: str, call: Callable[[], T]) -> T | None:
    """`call()`, or None when AWS answers with one of the error `codes` (the thing is not there);
    every other failure becomes a rexctl error naming what rexctl was `doing`."""
    try:
        with aws_errors(doing):
            return call()
    except RexctlError as exc:
        if answered(exc, codes):
            return None
        raise


def eventually(
    codes: str | Collection[str],
    doing: str,
    call: Callable[[], T],
    *,
    timeout: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    first: float = 0.2,
    cap: float = 5.0,
    retry_if: Callable[[BaseException], bool] | None = None,
) -> T:
    """`call()` like `aws_errors(doing)`, retried while AWS answers one of `codes` (and
    `retry_if`, when given, agrees) for something that is not there yet (EC2 API reference,
    "Eventual consistency": retry with exponential backoff), from `first` seconds doubling to
    `cap`, for at most `timeout` seconds of sleeping. The last answer is raised as a rexctl error
    that keeps AWS's as its `__cause__`, like `aws_errors`."""
    delay, slept = first, 0.0
    while True:
        try:
            return call()
        except Exception as exc:
            again = answered(exc, codes) and (retry_if is None or retry_if(exc))
            if not again or slept >= timeout:
                raise translate(exc, doing) from exc
        sleep(delay)
        slept += delay
        delay = min(delay * 2, cap)
