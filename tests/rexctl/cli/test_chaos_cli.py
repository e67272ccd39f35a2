"""`rexctl chaos` as a user runs it: a moto server for AWS, the bundled service with a real
redis-server for the API, and a small "network" thread that does to the service what a network
ACL does to ECS tasks (SIGSTOP on the redis-server while a DENY entry for its port exists).

Security-group revocations are deliberately not modelled by that thread: on AWS they do not cut
open connections either, which is why break-sg ends "fault not observed" here.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rexctl.aws.session import AwsClients
from rexctl.cli import app
from rexctl.drills import journal as journal_mod
from tests.helpers import RedisServer, ServiceProcess
from tests.rexctl.drills import world as w

runner = CliRunner()


@dataclass
class Stack:
    endpoint: str
    clients: AwsClients
    world: w.World
    redis: RedisServer
    service: ServiceProcess
    config: Path
    state_dir: Path
    tmp: Path

    @property
    def url(self) -> str:
        return f"{self.service.url}/api/products"

    def cache_acls(self) -> list[dict[str, Any]]:
        """The network ACLs the cache's subnets use now (break-nacl moves them to a copy)."""
        return list(
            self.clients.ec2.describe_network_acls(
                Filters=[{"Name": "association.subnet-id", "Values": self.world.cache_subnets}]
            )["NetworkAcls"]
        )

    def acl(self) -> dict[str, Any]:
        """The cache subnets' ACL (minus association ids, which AWS renews each time a subnet
        moves), which ACLs the cache's subnets use, and the drill copies that exist."""
        acl = self.clients.ec2.describe_network_acls(NetworkAclIds=[self.world.acl_id])
        raw = acl["NetworkAcls"][0]
        raw["Entries"] = sorted(raw["Entries"], key=lambda e: (e["Egress"], e["RuleNumber"]))
        raw["Associations"] = sorted(a["SubnetId"] for a in raw["Associations"])
        copies = self.clients.ec2.describe_network_acls(
            Filters=[{"Name": "tag-key", "Values": ["rexctl:drill"]}]
        )["NetworkAcls"]
        return {
            "acl": dict(raw),
            "cache uses": sorted(a["NetworkAclId"] for a in self.cache_acls()),
            "copies": sorted(a["NetworkAclId"] for a in copies),
        }

    def denied(self) -> bool:
        """A DENY entry for the cache port sits in an ACL the cache's subnets use."""
        return any(
            e["RuleAction"] == "deny" and e["RuleNumber"] < 100
            for acl in self.cache_acls()
            for e in acl["Entries"]
        )

    def sg(self) -> dict[str, Any]:
        group = self.clients.ec2.describe_security_groups(GroupIds=[self.world.cache_sg])
        raw = group["SecurityGroups"][0]
        raw["IpPermissions"] = sorted(raw["IpPermissions"], key=repr)  # order is not meaningful
        return dict(raw)

    def invoke(self, *args: str) -> Any:
        return runner.invoke(app, ["--config", str(self.config), *args])

    def journals(self) -> list[journal_mod.Journal]:
        return journal_mod.list_journals(self.state_dir)


class Network(threading.Thread):
    """While a DENY entry sits in the cache subnets' ACL, the cache is unreachable (frozen), and
    the service's "Redis error" lines reach CloudWatch Logs like awslogs would ship them."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(daemon=True)
        self.stack = stack
        self.halt = threading.Event()
        self.shipped: set[str] = set()
        self.cuts = 0

    def run(self) -> None:
        logs = self.stack.clients.logs
        stream = "ecs/backend/0123456789abcdef"
        logs.create_log_stream(logGroupName=w.LOG_GROUP, logStreamName=stream)
        frozen = False
        while not self.halt.wait(0.05):
            denied = self.stack.denied()
            if denied and not frozen:
                self.stack.redis.freeze()
                self.cuts += 1
            elif not denied and frozen:
                self.stack.redis.thaw()
            frozen = denied
            lines = [ln for ln in self.stack.service.log().splitlines() if "Redis error" in ln]
            fresh = [ln for ln in lines if ln not in self.shipped]
            if fresh:
                now = int(time.time() * 1000)
                logs.put_log_events(
                    logGroupName=w.LOG_GROUP,
                    logStreamName=stream,
                    logEvents=[{"timestamp": now, "message": m} for m in fresh],
                )
                self.shipped.update(fresh)
        self.stack.redis.thaw()


def service_env(host: str, port: int) -> dict[str, str]:
    return {
        "REDIS_ENABLED": "true",
        "REDIS_HOST": host,
        "REDIS_PORT": str(port),
        "REDIS_TIMEOUT_MS": "100",
        "DB_DELAY_MS": "20",
        "NEAR_CACHE_TTL_MS": "0",
        "BREAKER_PROBE_MS": "100",
    }


@pytest.fixture
def stack(
    moto_server: str, redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stack]:
    import httpx

    monkeypatch.chdir(tmp_path)
    # moto keeps its state per process, not per server: start from a clean slate.
    httpx.post(f"{moto_server}/moto-api/reset").raise_for_status()
    w.keep_tasks_running(moto_server)
    clients = AwsClients(region="us-east-1", endpoint_url=moto_server)
    world = w.build(clients)
    service = ServiceProcess(service_env(redis_server.host, redis_server.port), tmp_path)
    service.start()
    state_dir = tmp_path / "state"
    config = tmp_path / "rexctl.toml"
    s = Stack(moto_server, clients, world, redis_server, service, config, state_dir, tmp_path)
    config.write_text(world.toml(s.url, state_dir, moto_server), encoding="utf-8")
    try:
        yield s
    finally:
        s.service.stop()
        # The threaded server shares this process's moto state: leave none behind.
        w.default_task_transitions()
        httpx.post(f"{moto_server}/moto-api/reset").raise_for_status()


@pytest.fixture
def network(stack: Stack) -> Iterator[Network]:
    net = Network(stack)
    net.start()
    try:
        yield net
    finally:
        net.halt.set()
        net.join(5)


FAST = ["--duration", "2", "--interval", "0.2", "--settle", "15", "--yes"]


def test_break_nacl_passes_against_the_bundled_service(stack: Stack, network: Network) -> None:
    before = stack.acl()
    report = stack.tmp / "report.json"
    page = stack.tmp / "report.html"
    result = stack.invoke(
        "chaos", "break-nacl", *FAST, "--report", str(report), "--report-html", str(page)
    )
    assert result.exit_code == 0, result.output
    assert network.cuts == 1
    assert stack.acl() == before
    assert "logs show Redis error" in result.stdout and "Latency timeline" in result.stdout
    data = json.loads(report.read_text())
    assert data["outcome"] == "passed" and data["exit_code"] == 0
    assert set(data) >= {"journal", "observations", "verdict", "timeline", "restore", "plan"}
    assert data["journal"]["status"] == "restored"
    assert {c["name"]: c["status"] for c in data["verdict"]["checks"]} == {
        "logs show Redis error": "passed",
        "API still works": "passed",
        "tasks did not restart": "passed",
        "cache used again": "passed",
    }
    during = [a for a in data["observations"]["answers"] if a["phase"] == "during"]
    assert during[-1]["source"] == "db"
    assert [j.status for j in stack.journals()] == ["restored"]
    # The drill keeps its record (what --report wrote) for `rexctl chaos report`, and its page.
    kept = stack.state_dir / "records" / f"{data['id']}.json"
    assert json.loads(kept.read_text()) == data
    html = page.read_text()
    assert f"The drill's report: {page} (open it in a browser)." in result.stderr
    assert '<svg class="timeline"' in html and '<g class="fault-window">' in html
    assert html.count('<td class="check">') == 4


def test_break_sg_is_not_observed_and_says_why(stack: Stack, network: Network) -> None:
    before = stack.sg()
    result = stack.invoke("chaos", "break-sg", *FAST, "--json")
    assert result.exit_code == 4, result.output
    data = json.loads(result.stdout)
    assert data["outcome"] == "not observed"
    assert data["verdict"]["checks"][0]["status"] == "not observed"
    assert "connections opened before the rule was revoked keep working" in result.stderr
    assert "rexctl chaos break-nacl" in result.stderr
    assert stack.sg() == before


def test_bad_input_is_refused_before_anything_changes(stack: Stack) -> None:
    before = stack.acl(), stack.sg()
    cases = [
        (["chaos", "break-nacl", "--duration", "2"],
         "`rexctl chaos break-nacl` changes AWS resources and there is no terminal to confirm it: "
         "pass --yes."),
        (["chaos", "break-sg", "--duration", "3601", "--yes"],
         "--duration must be more than 0 and at most 3600 seconds (one hour), got 3601."),
    ]  # fmt: skip
    for args, message in cases:
        result = stack.invoke(*args)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"Error: {message}"), result.stderr
    result = stack.invoke("chaos", "break-sg", *FAST, "--report", str(stack.tmp / "no" / "r.json"))
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"Error: --report {stack.tmp / 'no' / 'r.json'}: the directory {stack.tmp / 'no'} does "
        "not exist."
    )
    unknown = stack.invoke("chaos", "break-dns", "--yes")
    assert unknown.exit_code == 2 and "No such command 'break-dns'" in unknown.output
    result = runner.invoke(
        app, ["--config", str(stack.tmp / "none.toml"), "chaos", "break-sg", "--yes"]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"Error: `ecs.cluster` is not set (there is no {stack.tmp / 'none.toml'})."
    )
    # The missing rule: once revoked by hand, break-sg refuses and names `rexctl provision`.
    stack.clients.ec2.revoke_security_group_ingress(
        GroupId=stack.world.cache_sg,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
                        "UserIdGroupPairs": [{"GroupId": stack.world.ecs_sg,
                                              "Description": "Redis from ECS"}]}],
    )  # fmt: skip
    result = stack.invoke("chaos", "break-sg", *FAST)
    assert result.exit_code == 2
    assert "Run `rexctl provision`" in result.stderr
    assert stack.acl() == before[0]
    assert stack.journals() == []


def test_wrong_host_against_the_bundled_service(stack: Stack, network: Network) -> None:
    """ECS (the scheduler) starts the new revision's task as the local service, with its
    REDIS_HOST. The `.invalid` name is mapped to a closed loopback port instead of being looked
    up, so that no DNS query leaves the machine; the service sees an unreachable cache either way.
    """
    from tests.helpers import free_port

    closed_port = free_port()
    service_revisions: list[str] = []

    def deploy(td_arn: str) -> None:
        td = stack.clients.ecs.describe_task_definition(taskDefinition=td_arn)["taskDefinition"]
        env = {e["name"]: e["value"] for e in td["containerDefinitions"][0]["environment"]}
        bad = env["REDIS_HOST"].endswith(".invalid")
        host, port = ("127.0.0.1", closed_port) if bad else (stack.redis.host, stack.redis.port)
        old = stack.service
        old.stop()
        new = ServiceProcess(service_env(host, port), stack.tmp)
        new.port, new.env["PORT"] = old.port, str(old.port)
        new.log_path = stack.tmp / f"service-{old.port}-{len(service_revisions)}.log"
        new.start()
        stack.service = new
        service_revisions.append(env["REDIS_HOST"])

    before = stack.clients.ecs.describe_services(cluster=w.CLUSTER, services=[w.SERVICE])
    with w.EcsScheduler(stack.clients.ecs, stack.world, on_rollout=deploy):
        result = stack.invoke("chaos", "wrong-host", *FAST, "--json")
    assert result.exit_code == 0, result.output
    assert service_revisions == ["rexpress-redis.invalid", w.world_host()]
    data = json.loads(result.stdout)
    assert {c["name"]: c["status"] for c in data["verdict"]["checks"]} == {
        "logs show Redis error": "passed",
        "API still works": "passed",
        "new tasks stayed up": "passed",
        "API answers from the database": "passed",
        "cache used again": "passed",
    }
    after = stack.clients.ecs.describe_services(cluster=w.CLUSTER, services=[w.SERVICE])
    assert after["services"][0]["taskDefinition"] == before["services"][0]["taskDefinition"]
    bad = data["journal"]["changes"][0]["bad"]
    status = stack.clients.ecs.describe_task_definition(taskDefinition=bad)["taskDefinition"]
    assert status["status"] == "INACTIVE"


def sample_journal(stack: Stack) -> journal_mod.Journal:
    """A break-nacl drill that was injected and then lost (as if its machine died)."""
    from rexctl.drills.faults import make_fault
    from tests.rexctl.drills.conftest import Aws

    cfg = Aws(stack.clients, stack.world, stack.state_dir).config(
        REXCTL_ENDPOINT_URL=stack.endpoint
    )
    fault = make_fault("break-nacl", stack.clients)
    plan = fault.plan(cfg)
    j = journal_mod.Journal(
        id="20260101T000000Z-break-nacl-0a0a0a", drill="break-nacl", created_at="x",
        aws={"region": "us-east-1", "profile": "", "endpoint_url": stack.endpoint},
        changes=plan.changes, summary=plan.summary, before=plan.before,
        manual_undo=fault.manual_undo(plan.changes, {"region": "us-east-1"}),
    )  # fmt: skip
    journal_mod.save(j, stack.state_dir)
    fault.inject(j, lambda: journal_mod.save(j, stack.state_dir))
    return j


def test_restore_and_the_warnings_while_a_journal_is_unrestored(stack: Stack) -> None:
    before = stack.acl()
    j = sample_journal(stack)
    assert stack.acl() != before

    refused = stack.invoke("chaos", "break-sg", *FAST)
    assert refused.exit_code == 2
    assert refused.stderr.startswith(
        f"Error: A drill is not restored yet: {j.id} (break-nacl, pending). "
        "A new drill will not start until it is."
    )
    assert "`rexctl chaos restore`" in refused.stderr

    warned = runner.invoke(
        app, ["provision", "--help"], env={"REXCTL_STATE_DIR": str(stack.state_dir)}
    )
    assert "Run `rexctl chaos restore` to undo them." in warned.stderr

    listed = stack.invoke("chaos", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert [(d["id"], d["status"]) for d in json.loads(listed.stdout)] == [(j.id, "pending")]

    table = stack.invoke("chaos", "list")
    assert table.exit_code == 0, table.output
    assert f"{j.id} │ pending" in table.stdout, "the id stays on one line, to copy for --drill"

    no = stack.invoke("chaos", "restore")
    assert no.exit_code == 2 and "pass --yes" in no.stderr
    assert (
        f"Drill {j.id} (pending) changed, and restoring undoes:\n  - Create a network ACL"
        in no.stderr
    )
    assert stack.acl() != before

    done = stack.invoke("chaos", "restore", "--yes", "--json")
    assert done.exit_code == 0, done.output
    assert [(o["id"], o["ok"], o["status"]) for o in json.loads(done.stdout)] == [
        (j.id, True, "restored")
    ]
    assert stack.acl() == before
    again = stack.invoke("chaos", "restore", "--yes")
    assert again.exit_code == 0 and "Nothing to restore" in again.stderr
    unknown = stack.invoke("chaos", "restore", "--drill", "nope", "--yes")
    assert unknown.exit_code == 2
    assert "Drill nope has no journal" in unknown.stderr


# `python -m rexctl` with Ctrl-C armed as in a terminal: were pytest itself a background job, its
# children would start with SIGINT ignored, and rexctl (rightly) leaves an ignored signal alone.
AS_IN_A_TERMINAL = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('rexctl', run_name='__main__', alter_sys=True)"
)


def start_drill(stack: Stack, drill: str, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", AS_IN_A_TERMINAL, "--config", str(stack.config), "chaos", drill,
         "--interval", "0.2", "--settle", "10", "--yes", *extra],
        cwd=stack.tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("sig", "moment"),
    [
        (signal.SIGTERM, "early"),
        (signal.SIGTERM, "observe"),
        (signal.SIGINT, "observe"),
    ],
)
def test_a_signal_at_a_random_moment_still_restores(
    stack: Stack, sig: signal.Signals, moment: str
) -> None:
    before = stack.acl()
    rng = random.Random()
    with start_drill(stack, "break-nacl", "--duration", "30") as proc:
        try:
            if moment == "early":
                time.sleep(rng.uniform(0.0, 1.5))  # start-up, planning, or just after injecting
            else:
                wait_for(stack.denied)
                time.sleep(rng.uniform(0.1, 1.5))
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    text = err.decode()
    assert proc.returncode in (130, -sig) if moment == "early" else proc.returncode == 130, text
    assert stack.acl() == before, text
    assert journal_mod.unrestored(stack.state_dir) == [], text
    if moment == "observe":
        assert "Interrupted; the break-nacl drill was undone (AWS confirmed)." in text
        assert f"{sig.name}: stopping; the fault is undone first" in text


def test_sigkill_leaves_a_journal_that_restore_undoes(stack: Stack) -> None:
    before = stack.acl()
    with start_drill(stack, "break-nacl", "--duration", "30") as proc:
        try:
            wait_for(stack.denied)
            time.sleep(random.uniform(0.1, 1.0))
            proc.kill()
            proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert stack.acl() != before, "SIGKILL cannot restore: the fault is still in place"
    pending = journal_mod.unrestored(stack.state_dir)
    assert [j.drill for j in pending] == ["break-nacl"]
    assert pending[0].aws["endpoint_url"] == stack.endpoint

    result = stack.invoke("chaos", "restore", "--yes")
    assert result.exit_code == 0, result.output
    assert stack.acl() == before
    assert journal_mod.unrestored(stack.state_dir) == []


def test_the_drill_searches_logs_in_the_awslogs_region(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI hands the drill a client factory: a log group in another region (the container's
    `awslogs-region`) is searched there, with the profile and endpoint of the drill."""
    from rexctl.drills import observe

    seen: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def capture(clients: Any, **kwargs: Any) -> Any:
        seen["same"] = kwargs["logs_client"]("us-east-1")
        seen["other"] = kwargs["logs_client"]("eu-west-1")
        raise Stop()

    monkeypatch.setattr(observe, "build_sensors", capture)
    result = stack.invoke("chaos", "break-sg", *FAST)
    assert isinstance(result.exception, Stop), result.output
    assert seen["same"].meta.region_name == "us-east-1"
    assert seen["other"].meta.region_name == "eu-west-1"
    assert seen["other"].meta.endpoint_url == stack.endpoint


# --- issue 11: the undo promise under every fault ----------------------------------------------


def test_a_damaged_journal_is_reported_blocks_and_is_restored_or_discarded(stack: Stack) -> None:
    """A pending break-nacl journal cut short: today no command warned, `chaos list` was empty,
    `chaos restore` said "Nothing to restore" and a new drill was allowed, with the fault left
    in place for good."""
    before = stack.acl()
    j = sample_journal(stack)
    path = journal_mod.journal_path(stack.state_dir, j.id)
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index('"subnets": [') + 14], encoding="utf-8")
    assert stack.acl() != before

    warned = runner.invoke(
        app, ["provision", "--help"], env={"REXCTL_STATE_DIR": str(stack.state_dir)}
    )
    assert f"Warning: Drill journal {path} cannot be read as a journal: it is not valid JSON" in (
        " ".join(warned.stderr.split())
    )

    listed = stack.invoke("chaos", "list", "--json")
    assert listed.exit_code == 0, listed.output
    [entry] = json.loads(listed.stdout)
    assert (entry["id"], entry["partial"]) == (j.id, True)
    assert entry["damage"][0].startswith("it is not valid JSON")
    table = stack.invoke("chaos", "list")
    assert f"{j.id} │ damaged" in table.stdout

    refused = stack.invoke("chaos", "break-sg", *FAST)
    assert refused.exit_code == 2, refused.output
    assert refused.stderr.startswith("Error: A drill journal is in the way of a new drill.")
    assert stack.journals()[0].status == "pending", "nothing was added"

    done = stack.invoke("chaos", "restore", "--yes")
    assert done.exit_code == 3, done.output
    assert stack.acl() == before, "what it recorded is undone: the copy is gone"
    flat = " ".join(done.stderr.split())
    assert f"break-nacl ({j.id}) may still be in place: attempt 1: restored what could be read" in (
        flat
    )
    assert f"`rexctl chaos discard {j.id}` sets the journal aside" in flat
    assert [x.status for x in stack.journals()] == ["restore-failed"], "still in the way"

    unconfirmed = stack.invoke("chaos", "discard", j.id)
    assert unconfirmed.exit_code == 2
    assert "`rexctl chaos discard` needs a confirmation: pass --yes." in unconfirmed.stderr
    assert "undoes nothing" in unconfirmed.stderr
    discarded = stack.invoke("chaos", "discard", j.id, "--yes", "--json")
    assert discarded.exit_code == 0, discarded.output
    moved = Path(json.loads(discarded.stdout)["moved_to"])
    assert moved == stack.state_dir / "drills" / "discarded" / f"{j.id}.json" and moved.is_file()
    assert stack.journals() == []
    assert "Nothing to restore" in stack.invoke("chaos", "restore", "--yes").stderr


def test_state_that_cannot_be_written_is_one_message_and_exit_2(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REXCTL_STATE_DIR pointing at a file, and a full disk: a traceback today; one message and
    exit 2 now, before anything changes."""
    before = stack.sg()
    a_file = stack.tmp / "not-a-dir"
    a_file.write_text("x")
    result = runner.invoke(
        app,
        ["--config", str(stack.config), "chaos", "break-sg", *FAST],
        env={"REXCTL_STATE_DIR": str(a_file)},
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[0] == (
        f"Error: Cannot write rexctl's drill state in {a_file / 'drills'} "
        f"({a_file / 'drills'}: Not a directory)."
    )
    assert "Traceback" not in result.output
    assert stack.sg() == before

    def disk_full(directory: Path, path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(journal_mod, "_write_durably", disk_full)
    result = stack.invoke("chaos", "break-sg", *FAST)
    assert result.exit_code == 2, result.output
    [error] = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    drills = stack.state_dir / "drills"
    assert error.startswith(f"Error: Cannot write rexctl's drill state in {drills} ({drills}/")
    assert error.endswith(".json: No space left on device).")
    assert stack.sg() == before, "nothing was changed"


def test_two_drills_started_together_never_undo_each_other(stack: Stack) -> None:
    """In 2 of 23 paired starts both drills ran and one undid the other's change. Started
    together, one now refuses (or, started far enough apart, they run one after the other)."""
    before = stack.sg()
    refusals = 0
    for _ in range(4):
        pair = [start_drill(stack, "break-sg", "--duration", "0.6") for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in pair]
        codes = [p.returncode for p in pair]
        errs = [e.decode() for _, e in outs]
        for code, err in zip(codes, errs, strict=True):
            assert code in (2, 4), err  # refused, or ran: "not observed" (no Network thread)
            if code == 2:
                refusals += 1
                assert "Another drill command is running with state directory" in err, err
        assert stack.sg() == before
    journals = stack.journals()
    assert all(j.status == "restored" for j in journals)
    spans = sorted((j.created_at, j.restored_at) for j in journals)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start, "two drills overlapped"
    assert refusals >= 1, "the starts never overlapped: this test proved nothing"
