"""The VPC rules the gate applies, as pure functions."""

from __future__ import annotations

from rexctl.sandbox.network import (
    AclEntry,
    Path,
    SecurityGroup,
    SgRule,
    Subnet,
    acl_allows,
    acl_allows_path,
    sg_allows,
)

ALLOW_ALL = (
    AclEntry(100, "-1", "allow", False, "0.0.0.0/0", None, None),
    AclEntry(100, "-1", "allow", True, "0.0.0.0/0", None, None),
    AclEntry(32767, "-1", "deny", False, "0.0.0.0/0", None, None),
    AclEntry(32767, "-1", "deny", True, "0.0.0.0/0", None, None),
)
EGRESS_ALL = (SgRule("-1", None, None, cidrs=("0.0.0.0/0",)),)


def path(cache_acl: tuple[AclEntry, ...] = ALLOW_ALL, ingress: tuple[SgRule, ...] = ()) -> Path:
    return Path(
        task_subnet=Subnet("subnet-task", "10.0.101.0/24", ALLOW_ALL),
        task_groups=(SecurityGroup("sg-task", (), EGRESS_ALL),),
        cache_subnets=(Subnet("subnet-cache", "10.0.1.0/24", cache_acl),),
        cache_groups=(SecurityGroup("sg-cache", ingress, EGRESS_ALL),),
        port=6379,
    )


def test_sg_needs_a_rule_for_the_port_from_the_task_group() -> None:
    assert not sg_allows(path())
    assert sg_allows(path(ingress=(SgRule("tcp", 6379, 6379, groups=("sg-task",)),)))
    assert not sg_allows(path(ingress=(SgRule("tcp", 6380, 6380, groups=("sg-task",)),)))
    assert not sg_allows(path(ingress=(SgRule("tcp", 6379, 6379, groups=("sg-other",)),)))
    assert sg_allows(path(ingress=(SgRule("tcp", 6379, 6379, cidrs=("10.0.0.0/16",)),)))


def test_acl_first_matching_rule_number_wins() -> None:
    deny_first = (AclEntry(1, "6", "deny", False, "10.0.101.0/24", 6379, 6379), *ALLOW_ALL)
    deny_after = (AclEntry(200, "6", "deny", False, "10.0.101.0/24", 6379, 6379), *ALLOW_ALL)
    assert not acl_allows(deny_first, egress=False, peer_cidr="10.0.101.0/24", port=6379)
    assert acl_allows(deny_after, egress=False, peer_cidr="10.0.101.0/24", port=6379)
    assert acl_allows(deny_first, egress=False, peer_cidr="10.0.102.0/24", port=6379)
    assert acl_allows(deny_first, egress=False, peer_cidr="10.0.101.0/24", port=6380)
    assert not acl_allows((), egress=False, peer_cidr="10.0.101.0/24", port=6379)


def test_acl_path_checks_both_directions_but_not_inside_one_subnet() -> None:
    deny = (AclEntry(1, "6", "deny", False, "10.0.101.0/24", 6379, 6379), *ALLOW_ALL)
    assert acl_allows_path(path(), client_port=50000)
    assert not acl_allows_path(path(cache_acl=deny), client_port=50000)
    reply_denied = (AclEntry(1, "6", "deny", True, "10.0.101.0/24", 32768, 65535), *ALLOW_ALL)
    assert not acl_allows_path(path(cache_acl=reply_denied), client_port=50000)
    same = Path(
        task_subnet=Subnet("subnet-cache", "10.0.1.0/24", deny),
        task_groups=(),
        cache_subnets=(Subnet("subnet-cache", "10.0.1.0/24", deny),),
        cache_groups=(),
        port=6379,
    )
    assert acl_allows_path(same, client_port=50000)
