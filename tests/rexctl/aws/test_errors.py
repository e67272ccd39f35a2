"""botocore failures become one-paragraph messages with the documented exit codes."""

from __future__ import annotations

import botocore.exceptions as bce
import pytest

from rexctl.aws.errors import aws_errors, translate
from rexctl.errors import AwsError, ConfigError, ExitCode


def client_error(
    code: str, message: str = "msg", op: str = "DescribeSecurityGroups"
) -> bce.ClientError:
    return bce.ClientError({"Error": {"Code": code, "Message": message}}, op)


def test_missing_credentials_is_configuration() -> None:
    err = translate(bce.NoCredentialsError(), "describe the cache")
    assert isinstance(err, ConfigError)
    assert err.exit_code == ExitCode.BAD_INPUT
    assert err.message == "No AWS credentials were found while trying to describe the cache."
    assert "aws configure" in (err.hint or "")


def test_access_denied_names_the_action() -> None:
    err = translate(client_error("UnauthorizedOperation", "You are not authorized."))
    assert isinstance(err, AwsError)
    assert err.exit_code == ExitCode.AWS_ERROR
    assert "may not call DescribeSecurityGroups" in err.message
    assert "permission to call DescribeSecurityGroups" in (err.hint or "")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ExpiredToken", "Your AWS credentials have expired or are not valid (ExpiredToken)."),
        ("ThrottlingException", "AWS kept throttling DescribeSecurityGroups, even after retries."),
        ("ReplicationGroupNotFoundFault", "Not found: msg."),
        ("InvalidParameterValue", "AWS DescribeSecurityGroups failed: InvalidParameterValue: msg"),
    ],
)
def test_client_error_messages(code: str, expected: str) -> None:
    assert translate(client_error(code)).message == expected


def test_context_manager_translates_and_chains() -> None:
    with pytest.raises(AwsError) as info, aws_errors("list services"):
        raise client_error("AccessDenied", op="ListServices")
    assert "while trying to list services" in info.value.message
    assert isinstance(info.value.__cause__, bce.ClientError)


def test_no_region_and_endpoint() -> None:
    assert isinstance(translate(bce.NoRegionError()), ConfigError)
    err = translate(bce.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    assert err.message.startswith("Cannot reach the AWS endpoint http://127.0.0.1:1")


def test_unreadable_answer_is_an_aws_error() -> None:
    import botocore.parsers

    with pytest.raises(AwsError) as info, aws_errors("delete the subnet group"):
        raise botocore.parsers.ResponseParserError("Unable to parse response (500)")
    assert info.value.message == (
        "The AWS endpoint gave an answer rexctl could not read while trying to delete the "
        "subnet group."
    )


def test_unless_missing_is_none_only_for_the_named_codes() -> None:
    from rexctl.aws.errors import answered, unless_missing

    def fails(code: str) -> None:
        raise client_error(code)

    missing = "InvalidGroup.NotFound"
    assert unless_missing(missing, "x", lambda: fails(missing)) is None
    assert unless_missing(("A", "B"), "x", lambda: fails("B")) is None
    assert unless_missing("A", "x", lambda: 3) == 3
    with pytest.raises(AwsError) as info:
        unless_missing("InvalidGroup.NotFound", "describe it", lambda: fails("AccessDenied"))
    assert "while trying to describe it" in info.value.message
    assert answered(info.value, "AccessDenied") and not answered(info.value, "A")
