"""EC2's eventual consistency: a new security group is not found for a moment (a fake clock)."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from botocore.exceptions import ClientError

from rexctl.sandbox.consistency import NEW_GROUP_INVISIBLE_SECONDS, Consistency, named_groups

AUTH = (
    "AWS4-HMAC-SHA256 Credential=sandbox/20250101/us-east-1/{service}/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class Inner:
    """Stands in for moto: answers CreateSecurityGroup with a group id, anything else 200."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        self.seen.append(body)
        start_response("200 OK", [("Content-Type", "text/xml")])
        if b"Action=CreateSecurityGroup" in body:
            return [b"<CreateSecurityGroupResponse><return>true</return>",
                    b"<groupId>sg-0abc</groupId></CreateSecurityGroupResponse>"]  # fmt: skip
        return [b"<ok/>"]


def call(app: Any, service: str = "ec2", **form: str) -> tuple[str, bytes]:
    body = urlencode(form).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": AUTH.format(service=service),
        "QUERY_STRING": "",
        "wsgi.input": io.BytesIO(body),
    }
    status: list[str] = []
    out = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
    return status[0], out


def test_the_groups_a_request_names() -> None:
    describe = {"Action": "DescribeSecurityGroups", "GroupId.1": "sg-1", "GroupId.2": "sg-2",
                "Filter.1.Name": "group-id"}  # fmt: skip
    assert named_groups(describe) == ["sg-1", "sg-2"]
    authorize = {"Action": "AuthorizeSecurityGroupIngress", "GroupId": "sg-1",
                 "IpPermissions.1.Groups.1.GroupId": "sg-2"}  # fmt: skip
    assert named_groups(authorize) == ["sg-1", "sg-2"]
    assert named_groups({"Action": "DescribeSecurityGroupRules", "Filter.1.Value.1": "sg-1"}) == []
    assert named_groups({"Action": "CreateSecurityGroup", "GroupName": "x"}) == []


def test_a_new_group_is_not_found_for_the_window_then_found() -> None:
    clock, inner = Clock(), Inner()
    app = Consistency(inner, clock=clock)
    assert call(app, Action="CreateSecurityGroup", GroupName="g")[0] == "200 OK"
    status, body = call(app, Action="AuthorizeSecurityGroupIngress", GroupId="sg-0abc")
    assert status == "400 Bad Request"
    assert b"<Code>InvalidGroup.NotFound</Code>" in body
    assert b"The security group 'sg-0abc' does not exist" in body
    assert len(inner.seen) == 1, "moto never saw the refused request"
    clock.now += NEW_GROUP_INVISIBLE_SECONDS - 0.01
    assert call(app, Action="DescribeSecurityGroups", **{"GroupId.1": "sg-0abc"})[0].startswith(
        "400"
    )
    clock.now += 0.01
    assert call(app, Action="DescribeSecurityGroups", **{"GroupId.1": "sg-0abc"})[0] == "200 OK"
    assert inner.seen[-1] == b"Action=DescribeSecurityGroups&GroupId.1=sg-0abc", "body re-wound"
    assert list(app.refused) == [("AuthorizeSecurityGroupIngress", "sg-0abc"),
                                 ("DescribeSecurityGroups", "sg-0abc")]  # fmt: skip


def test_unarmed_other_services_and_a_zero_window_pass() -> None:
    clock = Clock()
    unarmed = Consistency(Inner(), clock=clock, armed=False)
    call(unarmed, Action="CreateSecurityGroup", GroupName="g")
    assert call(unarmed, Action="DeleteSecurityGroup", GroupId="sg-0abc")[0] == "200 OK"
    off = Consistency(Inner(), clock=clock, window=0)
    call(off, Action="CreateSecurityGroup", GroupName="g")
    assert call(off, Action="DeleteSecurityGroup", GroupId="sg-0abc")[0] == "200 OK"
    app = Consistency(Inner(), clock=clock)
    call(app, Action="CreateSecurityGroup", GroupName="g")
    assert call(app, "elasticache", Action="DeleteSecurityGroup", GroupId="sg-0abc")[0] == (
        "200 OK"
    )


@pytest.fixture
def moto_server() -> Iterator[tuple[Any, Consistency, Clock]]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    clock = Clock()
    middleware = Consistency.install(server, clock=clock)
    host, port = server.get_host_and_port()
    ec2 = boto3.client(
        "ec2", endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
        aws_access_key_id="sandbox", aws_secret_access_key="sandbox",
    )  # fmt: skip
    try:
        yield ec2, middleware, clock
    finally:
        server.stop()


def test_boto3_sees_ec2s_error(moto_server: tuple[Any, Consistency, Clock]) -> None:
    ec2, _, clock = moto_server
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    sg = ec2.create_security_group(GroupName="new", Description="new", VpcId=vpc)["GroupId"]
    with pytest.raises(ClientError) as info:
        ec2.describe_security_groups(GroupIds=[sg])
    assert info.value.response["Error"] == {
        "Code": "InvalidGroup.NotFound",
        "Message": f"The security group '{sg}' does not exist",
    }
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    listed = ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [sg]}])
    assert [g["GroupId"] for g in listed["SecurityGroups"]] == [sg], "filters see it at once"
    clock.now += NEW_GROUP_INVISIBLE_SECONDS
    assert ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"][0]["GroupId"] == sg
    ec2.delete_security_group(GroupId=sg)
    ec2.delete_vpc(VpcId=vpc)
