"""Journals written by an earlier rexctl are still listed and restored.

`journals/*.json` were written by rexctl before the layout change of issue 9 (one per drill, as
`rexctl chaos ...` left them with the fault in place), with the world's ids replaced by
`{placeholders}`. Each test puts the same fault in place in a fresh moto world, writes the old
journal with this world's ids, and restores it through `rexctl chaos restore`'s core.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from rexctl.aws import ec2 as ec2_api
from rexctl.aws import nacl
from rexctl.drills import journal as journal_mod
from rexctl.drills import runner
from rexctl.drills.changes import SgRuleChange
from rexctl.drills.faults import make_fault
from rexctl.drills.journal import Journal
from tests.rexctl.drills import world as w
from tests.rexctl.drills.conftest import Aws
from tests.rexctl.drills.world import (
    full_acl,
    full_sg,
    journal_for,
    normalized_service,
    old_nacl_entries,
)

JOURNALS = Path(__file__).parent / "journals"


def write_old_journal(aws: Aws, drill: str, **values: str) -> Journal:
    world = {k: v for k, v in vars(aws.world).items() if isinstance(v, str)}
    for name in ("ecs_subnets", "cache_subnets"):
        world.update({f"{name}_{i}": v for i, v in enumerate(getattr(aws.world, name))})
    fill = {**world, **values}
    text = re.sub(
        r"\{([a-z_0-9]+)\}", lambda m: fill[m[1]], (JOURNALS / f"{drill}.json").read_text()
    )
    data = json.loads(text)
    path = journal_mod.journal_path(aws.state_dir, data["id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    (listed,) = runner.pending_journals(aws.state_dir)
    assert (listed.id, listed.drill, listed.status) == (data["id"], drill, journal_mod.PENDING)
    return listed


def restore(aws: Aws, journal: Journal, **fault_options: Any) -> runner.RestoreOutcome:
    (outcome,) = runner.restore_pending(
        [journal],
        lambda j: make_fault(j.drill, aws.clients, **fault_options),
        aws.state_dir,
        sleep=lambda s: None,
    )
    assert outcome.result.ok, outcome.result.errors
    assert runner.pending_journals(aws.state_dir) == []
    saved = json.loads(journal_mod.journal_path(aws.state_dir, journal.id).read_text())
    assert saved["status"] == journal_mod.RESTORED
    return outcome


def test_an_old_break_sg_journal_restores_the_rule(aws: Aws) -> None:
    before = full_sg(aws)
    fault = make_fault("break-sg", aws.clients)
    (change,) = fault.plan(aws.config()).changes
    assert isinstance(change, SgRuleChange)
    ec2_api.revoke_rule(aws.clients.ec2, change.rule)  # as that rexctl did (it marked nothing)
    assert full_sg(aws) != before  # the rule is revoked
    rule_id = change.rule.id
    restore(aws, write_old_journal(aws, "break-sg", rule_id=rule_id))
    assert full_sg(aws) == before


def test_an_old_break_nacl_journal_deletes_its_entries(aws: Aws) -> None:
    before = full_acl(aws)
    # The fault as break-nacl of earlier rexctl put it in place: DENY entries in the ACL itself
    # (today's drill moves the cache's subnets to a copy instead, test_nacl_clone.py).
    for change in old_nacl_entries(aws):
        nacl.add_entry(aws.clients.ec2, change.entry)  # type: ignore[union-attr]
    assert full_acl(aws) != before  # the DENY entries are in place
    restore(aws, write_old_journal(aws, "break-nacl"))
    assert full_acl(aws) == before


@pytest.mark.timeout(120)
def test_an_old_wrong_host_journal_rolls_back_and_deregisters(aws: Aws) -> None:
    before = normalized_service(aws)
    options = {"rollout_poll": 0.01, "rollout_timeout": 10, "sleep": time.sleep}
    fault = make_fault("wrong-host", aws.clients, **options)
    live = journal_for(fault.plan(aws.config()))
    with w.EcsScheduler(aws.clients.ecs, aws.world):
        fault.inject(live, lambda: None)
        bad = live.changes[0].bad  # type: ignore[union-attr]
        assert normalized_service(aws)["taskDefinition"] == bad
        old = write_old_journal(aws, "wrong-host", bad_arn=bad, bad_short=bad.rsplit("/", 1)[-1])
        restore(aws, old, **options)
    assert normalized_service(aws) == before
    status = aws.clients.ecs.describe_task_definition(taskDefinition=bad)["taskDefinition"]
    assert status["status"] == "INACTIVE"
