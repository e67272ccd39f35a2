"""`rexctl init/plan/provision/status/teardown` through the CLI, against a moto server.

The account is seeded through boto3 clients pointed at the same server; the CLI gets
`--endpoint-url` (CliRunner) or `AWS_ENDPOINT_URL` (the installed executable).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from rexctl.cli import app
from tests.rexctl.aws.world import (
    ACCOUNT_ID,
    REGION,
    World,
    answer_engine_versions,
    build_world,
    clients,
    snapshot,
)

runner = CliRunner()


@pytest.fixture
def server(moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    httpx.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    monkeypatch.chdir(tmp_path)
    answer_engine_versions(monkeypatch)  # DescribeCacheEngineVersions as AWS answers it
    yield moto_server


@pytest.fixture
def world(server: str) -> World:
    return build_world(clients(server))


def rexctl(server: str, *args: str) -> Result:
    base = ["--endpoint-url", server, "--region", REGION, "--config", "rexctl.toml"]
    return runner.invoke(app, [*base, *args])


def init(server: str) -> Result:
    return rexctl(server, "init", "--cluster", "rexpress", "--service", "backend")


def test_init_writes_rexctl_toml(server: str, world: World, tmp_path: Path) -> None:
    result = rexctl(
        server,
        "init",
        "--cluster",
        "rexpress",
        "--service",
        "backend",
        "--url",
        "https://alb.example.com/api/products",
    )
    assert result.exit_code == 0, result.output
    text = (tmp_path / "rexctl.toml").read_text()
    private = ", ".join(f'"{s}"' for s in world.private_subnets)
    assert text == (
        'region = "us-east-1"\n\n[cache]\nid = "rexpress-redis"\nnode_type = "cache.t4g.micro"\n'
        "replicas = 0\nmulti_az = false\nport = 6379\ntls = false\nauth = false\n"
        'engine = "redis"\nengine_version = "7.1"\nsecurity_group = "rexpress-redis-sg"\n'
        'subnet_group = "rexpress-redis-subnets"\nsubnets = []\nwait_timeout = 1800\n\n'
        f'[ecs]\ncluster = "rexpress"\nservice = "backend"\ncontainer = "backend"\n'
        f'vpc_id = "{world.vpc_id}"\nsubnets = [{private}]\n'
        f'security_groups = ["{world.ecs_sg}"]\n\n'
        '[app]\nurl = "https://alb.example.com/api/products"\n'
    )
    assert "Wrote rexctl.toml. Next: `rexctl plan`, then `rexctl provision`." in result.stderr

    again = init(server)
    assert again.exit_code == 2, again.output
    assert "Error: rexctl.toml already exists; rexctl init does not overwrite it." in again.stderr
    forced = rexctl(server, "init", "--cluster", "rexpress", "--service", "backend", "--force")
    assert forced.exit_code == 0, forced.output


def test_init_explains_missing_and_non_awsvpc_services(server: str, tmp_path: Path) -> None:
    c = clients(server)
    build_world(c, network_mode="bridge")
    result = init(server)
    assert result.exit_code == 2, result.output
    assert (
        "Error: ECS service 'backend' in cluster 'rexpress' does not use awsvpc networking"
        in result.stderr
    )
    missing = rexctl(server, "init", "--cluster", "rexpress", "--service", "nope")
    assert missing.exit_code == 3, missing.output
    assert "Error: ECS service 'nope' was not found in cluster 'rexpress'.\n" in missing.stderr
    assert not (tmp_path / "rexctl.toml").exists()


def test_plan_provision_noop_status(server: str, world: World) -> None:
    assert init(server).exit_code == 0

    plan = rexctl(server, "plan", "--json")
    assert plan.exit_code == 0, plan.output
    before = json.loads(plan.stdout)
    assert [s["state"] for s in before["steps"]][3:12] == ["to do"] * 9

    dry = rexctl(server, "provision", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "Dry run: steps 1-11 for rexpress-redis" in dry.stdout
    assert "Would create replication group rexpress-redis" in dry.stderr
    assert clients(server).elasticache.describe_replication_groups()["ReplicationGroups"] == []

    first = rexctl(server, "provision", "--json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert data["changed"] is True and data["status"] == "available"
    assert data["endpoint"].startswith("master.rexpress-redis.") and data["port"] == 6379
    assert "Warning: In-transit encryption is off" in first.stderr

    second = rexctl(server, "provision")
    assert second.exit_code == 0, second.output
    assert "Nothing to do: steps 1-11 already match rexctl.toml." in second.stderr
    assert data["endpoint"] in second.stdout

    after = json.loads(rexctl(server, "plan", "--json").stdout)
    assert [s["state"] for s in after["steps"]][1:11] == ["done"] * 10

    status = rexctl(server, "status")
    assert status.exit_code == 0, status.output
    assert data["endpoint"] in status.stdout
    assert world.ecs_sg in status.stdout
    assert "backend:1" in status.stdout
    assert "Missing" not in status.stderr


def test_auth_token_never_reaches_the_terminal(server: str, world: World, tmp_path: Path) -> None:
    assert init(server).exit_code == 0
    path = tmp_path / "rexctl.toml"
    path.write_text(
        path.read_text().replace("tls = false", "tls = true").replace("auth = false", "auth = true")
    )
    outputs = [rexctl(server, "provision", "--json"), rexctl(server, "provision")]
    outputs += [rexctl(server, "status", "--json"), rexctl(server, "plan", "--json")]
    outputs += [rexctl(server, "status"), rexctl(server, "plan")]
    assert "AUTH token:        in secret rexctl/rexpress-redis/auth-token" in outputs[4].stdout
    token = clients(server).secretsmanager.get_secret_value(
        SecretId="rexctl/rexpress-redis/auth-token"
    )["SecretString"]
    assert len(token) == 64
    for result in outputs:
        assert result.exit_code == 0, result.output
        assert token not in result.stdout and token not in result.stderr


def test_rotate_token_on_a_cache_without_a_token_is_refused(server: str, world: World) -> None:
    assert init(server).exit_code == 0
    assert rexctl(server, "provision").exit_code == 0
    result = rexctl(server, "rotate-token", "--json")
    assert result.exit_code == 2, result.output
    assert "Error: rexpress-redis has no AUTH token, so there is no token to rotate." in (
        result.stderr
    )
    assert "run `rexctl provision`: it turns AUTH on" in result.stderr
    assert result.stdout == ""


def test_cidr_rule_refusal_exit_code_and_text(server: str, world: World) -> None:
    ec2 = clients(server).ec2
    sg = ec2.create_security_group(
        GroupName="rexpress-redis-sg", Description="x", VpcId=world.vpc_id
    )["GroupId"]
    rule = ec2.authorize_security_group_ingress(
        GroupId=sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 6379,
                "ToPort": 6379,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    assert init(server).exit_code == 0
    revoke = (
        f"aws ec2 revoke-security-group-ingress --group-id {sg} --security-group-rule-ids {rule}"
    )
    plan = rexctl(server, "plan")
    assert plan.exit_code == 0, plan.output  # plan only reports
    assert f"(rule {rule} from 0.0.0.0/0)" in plan.stderr
    assert f"Remove it: `{revoke}`, then run `rexctl provision` again." in plan.stderr
    result = rexctl(server, "provision")
    assert result.exit_code == 1, result.output
    assert "Error: rexctl provision refuses to continue; nothing was changed." in result.stderr
    assert f"(rule {rule} from 0.0.0.0/0)" in result.stderr
    assert (
        f"aws ec2 revoke-security-group-ingress --group-id {sg} --security-group-rule-ids {rule}"
        in result.stderr
    )


def test_a_request_aws_refuses_is_refused_at_plan_time(
    server: str, world: World, tmp_path: Path
) -> None:
    """EC2 refuses a security-group name that starts with `sg-` (EC2 API reference,
    CreateSecurityGroup.GroupName). moto accepts it; rexctl builds the requests each planned
    action sends, checks them against AWS's rules, and refuses before its first change: the
    subnet group (step 7, sent first) is not created either."""
    assert init(server).exit_code == 0
    path = tmp_path / "rexctl.toml"
    path.write_text(
        path.read_text().replace(
            'security_group = "rexpress-redis-sg"', 'security_group = "sg-cache"'
        )
    )
    before = snapshot(clients(server))
    why = (
        "AWS would refuse CreateSecurityGroup: GroupName can't start with sg- (EC2 API "
        "reference, CreateSecurityGroup.GroupName). The value comes from "
        "`cache.security_group` ('sg-cache')."
    )
    plan = rexctl(server, "plan", "--json")
    assert plan.exit_code == 0, plan.output  # plan only reports
    data = json.loads(plan.stdout)
    step8 = data["steps"][7]
    assert (step8["state"], step8["detail"]) == ("blocked", why)
    assert data["blockers"] == [
        {"step": 8, "message": why, "hint": "Fix `cache.security_group` in rexctl.toml."}
    ]
    dry = rexctl(server, "provision", "--dry-run")
    assert dry.exit_code == 2, dry.output
    assert f"- Step 8: {why}" in dry.stderr
    assert "Would create" not in dry.stderr
    real = rexctl(server, "provision")
    assert real.exit_code == 2, real.output
    assert "Error: rexctl provision refuses to continue; nothing was changed." in real.stderr
    assert f"- Step 8: {why}" in real.stderr
    assert "Fix `cache.security_group` in rexctl.toml." in real.stderr
    assert snapshot(clients(server)) == before


def test_teardown_without_yes_is_refused_when_not_interactive(server: str, world: World) -> None:
    assert init(server).exit_code == 0
    assert rexctl(server, "provision").exit_code == 0
    result = rexctl(server, "teardown")
    assert result.exit_code == 2, result.output
    assert (
        "Error: rexctl teardown deletes resources and needs a confirmation; this is not an "
        "interactive terminal." in result.stderr
    )
    assert "delete" in result.stdout  # the list of what would go was shown first
    assert "rexpress-redis-sg (sg-" in result.stdout  # the group id is shown, not cut

    # --json: stdout is JSON only (what would go), the refusal stays on stderr.
    as_json = rexctl(server, "teardown", "--json")
    assert as_json.exit_code == 2, as_json.output
    data = json.loads(as_json.stdout)
    assert [(r["kind"], r["name"]) for r in data["delete"]] == [
        ("replication group", "rexpress-redis"),
        ("cache subnet group", "rexpress-redis-subnets"),
        ("security group", "rexpress-redis-sg"),
    ]
    assert data["kept"] == []
    assert "Will delete replication group rexpress-redis." in as_json.stderr
    assert "needs a confirmation" in as_json.stderr
    groups = clients(server).elasticache.describe_replication_groups()["ReplicationGroups"]
    assert [g["Status"] for g in groups] == ["available"]


def test_teardown_json_with_nothing_to_delete_prints_only_json(server: str, world: World) -> None:
    clients(server).ec2.create_security_group(
        GroupName="rexpress-redis-sg", Description="by hand", VpcId=world.vpc_id
    )
    assert init(server).exit_code == 0
    result = rexctl(server, "teardown", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["deleted"] == [] and data["failed"] == []
    assert [(r["kind"], r["why"]) for r in data["kept"]] == [
        ("security group", "not managed by rexctl")
    ]
    assert "Nothing to delete: no resource of this cache carries managed-by=rexctl." in (
        result.stderr
    )


def test_commands_have_help_and_are_documented() -> None:
    docs = (Path(__file__).parents[3] / "docs" / "provision.md").read_text()
    for command in ("init", "plan", "provision", "rotate-token", "status", "teardown"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, result.output
        assert f"rexctl {command}" in docs


class FinishDeletions:
    """moto never finishes deleting a replication group; this does, as AWS would."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        from moto.backends import get_backend

        groups = get_backend("elasticache")[ACCOUNT_ID][REGION].replication_groups
        for _ in range(2400):  # at most two minutes
            if self.stop.wait(0.05):
                return
            for gid, group in list(groups.items()):
                if group.status == "deleting":
                    groups.pop(gid, None)


def test_installed_rexctl_end_to_end(server: str, world: World, tmp_path: Path) -> None:
    exe = shutil.which("rexctl", path=str(Path(sys.executable).parent)) or str(
        Path(sys.executable).parent / "rexctl"
    )
    env = {**os.environ, "AWS_ENDPOINT_URL": server, "AWS_DEFAULT_REGION": REGION}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [exe, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )

    steps = [
        cli("init", "--cluster", "rexpress", "--service", "backend"),
        cli("plan"),
        cli("provision"),
        cli("provision"),
        cli("status", "--json"),
    ]
    for done in steps:
        assert done.returncode == 0, done.stderr
    assert "Primary endpoint" in steps[2].stdout
    assert "Nothing to do: steps 1-11 already match rexctl.toml." in steps[3].stderr
    status = json.loads(steps[4].stdout)
    assert status["cache"]["status"] == "available"

    finisher = FinishDeletions()
    finisher.thread.start()
    try:
        down = cli("teardown", "--yes", "--timeout", "60")
    finally:
        finisher.stop.set()
        finisher.thread.join(5)
    # moto cannot delete a cache subnet group (HTTP 500); everything else goes.
    assert down.returncode == 3, down.stderr
    assert "Deleted replication group rexpress-redis." in down.stderr
    assert "Deleted security group rexpress-redis-sg" in down.stderr
    unreadable = "The AWS endpoint gave an answer rexctl could not read"
    assert f"- cache subnet group rexpress-redis-subnets: {unreadable}" in down.stderr
    c = clients(server)
    assert c.elasticache.describe_replication_groups()["ReplicationGroups"] == []
    assert (
        c.ec2.describe_security_groups(
            Filters=[{"Name": "group-name", "Values": ["rexpress-redis-sg"]}]
        )["SecurityGroups"]
        == []
    )


def test_progress_lines_when_not_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    from rexctl import ui
    from rexctl.cli.provision import UiReporter

    class Spinner:
        def __init__(self) -> None:
            self.texts: list[str] = []

        def update(self, text: str) -> None:
            self.texts.append(text)

    ui.reset()
    spinner = Spinner()
    reporter = UiReporter("rexpress-redis", spinner)
    for status, elapsed in [
        ("creating", 0.0),
        ("creating", 15.0),
        ("creating", 61.0),
        ("creating", 75.0),
        ("available", 80.0),
    ]:
        reporter.progress(status, elapsed)
    ui.reset()
    assert capsys.readouterr().err.splitlines() == [
        "rexpress-redis: creating (0m 00s elapsed)",
        "rexpress-redis: creating (1m 01s elapsed)",
        "rexpress-redis: available (1m 20s elapsed)",
    ]
    assert len(spinner.texts) == 5


def test_teardown_asks_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rexctl import ui
    from rexctl.cli.provision import _confirmed
    from rexctl.provision import TeardownPlan
    from rexctl.provision.teardown import Resource

    class Tty:
        def isatty(self) -> bool:
            return True

    questions: list[str] = []
    answers = iter([False, True])

    def confirm(question: str) -> bool:
        questions.append(question)
        return next(answers)

    monkeypatch.setattr(ui, "interactive", lambda: True)
    monkeypatch.setattr(ui, "confirm", confirm)
    monkeypatch.setattr(sys, "stdin", Tty())
    ui.reset()
    plan = TeardownPlan("rexpress-redis", [Resource("security group", "x-sg", "sg-1", True)])
    assert _confirmed(plan, yes=False, json=False) is False
    assert "Nothing was deleted." in capsys.readouterr().err
    assert _confirmed(plan, yes=False, json=False) is True
    assert questions == ["Delete these 1 resource(s)?"] * 2
    assert _confirmed(plan, yes=True, json=False) is True and len(questions) == 2
