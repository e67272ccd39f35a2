"""What a drill changes, as typed records: one per kind, each with its journal form.

A journal's `changes` are these records; on disk each is a JSON object keyed by `"type"`:

- `sg-rule` (`SgRuleChange`, break-sg): an inbound rule revoked, to authorize again identically.
- `nacl-entry` (`NaclEntryChange`, break-nacl of rexctl before the ACL clone): a DENY entry added
  to a network ACL, to delete again.
- `service-revision` (`ServiceRevisionChange`, wrong-host): the bad revision rolled, to roll back
  from and deregister.
- `nacl-clone` (`AclCloneChange`, break-nacl): a copy of the cache subnets' network ACL with the
  DENY entries, and the cache's subnets moved to it (`SubnetMove`), to move back and delete.

`to_dict` writes the JSON earlier rexctl wrote for these kinds, plus any field added since
(journals left by a crash must restore with a newer rexctl, and a field an earlier rexctl did not
write has a default that means what that rexctl did), and `change_from_dict` reads any of them
back by `"type"`. A
change rexctl cannot read (an unknown type, a missing field) becomes an `UnreadableChange` that
keeps its JSON as it was: the journal still lists as unrestored, and restoring it says why it
cannot, instead of marking it restored.

This module is imported with the journals by the root CLI before every command: no boto3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from rexctl.aws.ec2 import Rule
from rexctl.aws.nacl import AclEntry, AclEntryView


@dataclass
class SgRuleChange:
    """break-sg: an inbound rule of the cache's security group, revoked during the drill.

    `mark` is the tag the drill puts on the group before it revokes (`rexctl:drill:<drill id>`),
    journaled before it is created; `revoking` is journaled as true right before the revoke is
    sent. A restore authorizes the rule again only when this drill sent its revoke: a drill
    that backed off (another one had marked the group) must not put back the other's rule.
    Journals of earlier rexctl have neither, and restore as they did (`revoking` true).
    """

    KIND: ClassVar[str] = "sg-rule"
    rule: Rule
    mark: str = ""
    revoking: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.KIND,
            "rule": self.rule.to_dict(),
            "mark": self.mark,
            "revoking": self.revoking,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SgRuleChange:
        revoking = data.get("revoking", True)
        if not isinstance(revoking, bool):
            raise TypeError(f"revoking is {revoking!r}, not true/false")
        return cls(Rule.from_dict(data["rule"]), str(data.get("mark") or ""), revoking)


@dataclass(frozen=True)
class NaclEntryChange:
    """A DENY entry added to a network ACL (break-nacl before the ACL clone; old journals)."""

    KIND: ClassVar[str] = "nacl-entry"
    entry: AclEntry

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.KIND, "entry": self.entry.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NaclEntryChange:
        return cls(AclEntry.from_dict(data["entry"]))


@dataclass
class ServiceRevisionChange:
    """wrong-host: the service rolled from `previous` to `bad` (filled in while injecting)."""

    KIND: ClassVar[str] = "service-revision"
    cluster: str
    service: str
    container: str
    previous: str  # the revision to roll back to
    bad_host: str
    bad: str = ""  # the bad revision's ARN, journaled right after it is registered
    drill_tag: str = ""  # its rexctl:drill tag value, journaled before registering

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.KIND,
            "cluster": self.cluster,
            "service": self.service,
            "container": self.container,
            "previous": self.previous,
            "bad": self.bad,
            "bad_host": self.bad_host,
            "drill_tag": self.drill_tag,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServiceRevisionChange:
        return cls(
            cluster=data["cluster"],
            service=data["service"],
            container=data["container"],
            previous=data["previous"],
            bad_host=data["bad_host"],
            bad=data.get("bad") or "",
            drill_tag=data.get("drill_tag") or "",
        )


@dataclass
class SubnetMove:
    """One of the cache's subnets, moved from its network ACL to the drill's copy and back.

    AWS gives the subnet a new association id each time it moves (the old one is gone), so the
    journal holds the id and the ACL as AWS last answered them, saved before the next call.
    """

    subnet_id: str
    original_acl_id: str
    association_id: str
    acl_id: str  # where the journal last saw it: the original ACL, or the copy

    def to_dict(self) -> dict[str, Any]:
        return {
            "subnet_id": self.subnet_id,
            "original_acl_id": self.original_acl_id,
            "association_id": self.association_id,
            "acl_id": self.acl_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubnetMove:
        return cls(
            subnet_id=data["subnet_id"],
            original_acl_id=data["original_acl_id"],
            association_id=data.get("association_id") or "",
            acl_id=data.get("acl_id") or data["original_acl_id"],
        )


@dataclass
class AclCloneChange:
    """break-nacl: a copy of network ACL `source_acl_id` (its entries, AWS's default `*` entries
    aside) with inbound DENY entries, and the cache's subnets moved to it.

    `drill_tag` (the copy's rexctl:drill tag, the journal id) is journaled before the copy is
    created and `clone_acl_id` as soon as AWS answers, so a restore finds the copy either way.
    """

    KIND: ClassVar[str] = "nacl-clone"
    vpc_id: str
    source_acl_id: str
    copied: list[AclEntryView]  # the original's entries, copied into the copy as they are
    denied: list[AclEntryView]  # the DENY entries added to the copy
    subnets: list[SubnetMove]
    untouched: list[str]  # other subnets that share the original ACL and keep it
    clone_acl_id: str = ""
    drill_tag: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.KIND,
            "vpc_id": self.vpc_id,
            "source_acl_id": self.source_acl_id,
            "clone_acl_id": self.clone_acl_id,
            "drill_tag": self.drill_tag,
            "copied": [e.to_dict() for e in self.copied],
            "denied": [e.to_dict() for e in self.denied],
            "subnets": [s.to_dict() for s in self.subnets],
            "untouched": list(self.untouched),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AclCloneChange:
        return cls(
            vpc_id=data.get("vpc_id") or "",  # only to find a copy by its tag: any VPC will do
            source_acl_id=data["source_acl_id"],
            copied=[AclEntryView.from_dict(e) for e in data.get("copied", [])],
            denied=[AclEntryView.from_dict(e) for e in data.get("denied", [])],
            subnets=[SubnetMove.from_dict(s) for s in data["subnets"]],
            untouched=list(data.get("untouched", [])),
            clone_acl_id=data.get("clone_acl_id") or "",
            drill_tag=data.get("drill_tag") or "",
        )


@dataclass(frozen=True)
class UnreadableChange:
    """A journaled change this rexctl cannot read: kept as it was, never taken as undone."""

    data: dict[str, Any]
    reason: str

    @property
    def kind(self) -> str:
        return str(self.data.get("type", "")) if isinstance(self.data, dict) else ""

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def label(self) -> str:
        kind = self.kind or "(none)"
        return f"a change of type {kind!r} that this rexctl cannot read ({self.reason})"


Change = SgRuleChange | NaclEntryChange | ServiceRevisionChange | AclCloneChange | UnreadableChange

_READERS: dict[str, Callable[[dict[str, Any]], Change]] = {
    SgRuleChange.KIND: SgRuleChange.from_dict,
    NaclEntryChange.KIND: NaclEntryChange.from_dict,
    ServiceRevisionChange.KIND: ServiceRevisionChange.from_dict,
    AclCloneChange.KIND: AclCloneChange.from_dict,
}


# What a change of each drill is when its "type" was lost (a journal cut short: "type" sorts
# late among its keys). break-nacl wrote DENY entries in place before it copied the ACL.
KIND_OF_DRILL: dict[str, Callable[[dict[str, Any]], str]] = {
    "break-sg": lambda data: SgRuleChange.KIND,
    "break-nacl": lambda data: NaclEntryChange.KIND if "entry" in data else AclCloneChange.KIND,
    "wrong-host": lambda data: ServiceRevisionChange.KIND,
}


def change_from_dict(data: Any, drill: str = "") -> Change:
    """The record for one journaled change, by its `"type"` (by `drill` when the change has
    none, as in a journal cut short; never raises)."""
    if not isinstance(data, dict):
        return UnreadableChange({"value": data}, "not a JSON object")
    if "type" not in data and drill in KIND_OF_DRILL:
        data = {**data, "type": KIND_OF_DRILL[drill](data)}
    reader = _READERS.get(str(data.get("type", "")))
    if reader is None:
        return UnreadableChange(data, "unknown type")
    try:
        return reader(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return UnreadableChange(data, f"{type(exc).__name__}: {exc}")


def unreadable(changes: list[Change]) -> list[UnreadableChange]:
    return [c for c in changes if isinstance(c, UnreadableChange)]
