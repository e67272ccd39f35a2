"""Network ACL adapter: entries read as dataclasses, and the drill's DENY entries."""

from __future__ import annotations

import pytest

from rexctl.aws import nacl


def test_which_entries_could_match_tcp_to_a_port() -> None:
    tcp_range = nacl.AclEntryView(100, False, "6", "allow", "10.0.0.0/16", port_range=(0, 65535))
    everything = nacl.AclEntryView(1, False, "-1", "allow", "0.0.0.0/0")
    udp = nacl.AclEntryView(2, False, "17", "allow", "10.0.0.0/16", port_range=(0, 65535))
    v6 = nacl.AclEntryView(3, False, "-1", "allow", ipv6_cidr="::/0")
    assert tcp_range.covers("10.0.1.0/24", 6379)
    assert not tcp_range.covers("10.9.0.0/24", 6379)  # another network
    assert everything.covers("10.0.1.0/24", 6379)
    assert not udp.covers("10.0.1.0/24", 6379)
    assert not v6.covers("10.0.1.0/24", 6379)
    narrow = nacl.AclEntryView(4, False, "6", "allow", "10.0.0.0/16", port_range=(443, 443))
    assert not narrow.covers("10.0.1.0/24", 6379)


def test_a_deny_entry_matches_only_itself() -> None:
    entry = nacl.AclEntry("acl-1", 1, False, "10.0.1.0/24", 6379)
    ours = nacl.AclEntryView(1, False, "6", "deny", "10.0.1.0/24", port_range=(6379, 6379))
    assert entry.matches(ours)
    foreign = nacl.AclEntryView(1, False, "6", "allow", "10.7.0.0/16", port_range=(443, 443))
    assert not entry.matches(foreign)
    outbound = nacl.AclEntryView(1, True, "6", "deny", "10.0.1.0/24", port_range=(6379, 6379))
    assert not entry.matches(outbound)


def test_deny_entry_journal_form_and_manual_undo() -> None:
    entry = nacl.AclEntry("acl-1", 3, True, "10.0.4.0/24", 6379)
    data = entry.to_dict()
    assert data == {
        "acl_id": "acl-1", "rule_number": 3, "egress": True, "cidr": "10.0.4.0/24",
        "port": 6379, "protocol": "6", "action": "deny",
    }  # fmt: skip
    assert nacl.AclEntry.from_dict(data) == entry
    assert entry.label() == "acl-1 rule 3 outbound: DENY tcp 6379 to 10.0.4.0/24"
    assert entry.cli_delete(" --region us-east-1") == (
        "aws ec2 delete-network-acl-entry --network-acl-id acl-1 --rule-number 3 --egress "
        "--region us-east-1"
    )


def test_ipv6_entries_cover_ipv6_peers_only() -> None:
    v6 = nacl.AclEntryView(3, False, "-1", "allow", ipv6_cidr="::/0")
    assert v6.covers("2600:1f18:abcd:e00::/64", 6379)
    assert not v6.covers("10.0.1.0/24", 6379)
    v4 = nacl.AclEntryView(4, False, "6", "allow", "0.0.0.0/0", port_range=(0, 65535))
    assert not v4.covers("2600:1f18:abcd:e00::/64", 6379)
    assert (v6.family, v4.family) == (6, 4)


def test_aws_default_entries_are_not_anybodys() -> None:
    """AWS's deny-all `*` entries: rule number 32767 (IPv4) and 32768 (IPv6) in the API."""
    star4 = nacl.AclEntryView(32767, False, "-1", "deny", "0.0.0.0/0")
    star6 = nacl.AclEntryView(32768, False, "-1", "deny", ipv6_cidr="::/0")
    mine = nacl.AclEntryView(100, False, "-1", "allow", "0.0.0.0/0")
    acl = nacl.NetworkAcl("acl-1", "vpc-1", entries=[mine, star4, star6])
    assert acl.own_entries() == [mine]


def test_an_entry_copies_into_another_acl_exactly() -> None:
    """The journal form of an entry round-trips, and its CreateNetworkAclEntry request holds
    everything AWS described: IPv6 block, ports, ICMP type and code."""
    from rexctl.aws import rules

    icmp = nacl.AclEntryView(7, True, "1", "allow", "10.0.0.0/16", icmp=(-1, -1))
    v6 = nacl.AclEntryView(8, False, "6", "deny", ipv6_cidr="2600::/64", port_range=(6379, 6379))
    for entry in (icmp, v6):
        assert nacl.AclEntryView.from_dict(entry.to_dict()) == entry
    assert icmp.request("acl-2") == {
        "NetworkAclId": "acl-2", "RuleNumber": 7, "Protocol": "1", "RuleAction": "allow",
        "Egress": True, "CidrBlock": "10.0.0.0/16", "IcmpTypeCode": {"Type": -1, "Code": -1},
    }  # fmt: skip
    assert v6.request("acl-2")["Ipv6CidrBlock"] == "2600::/64"
    assert "CidrBlock" not in v6.request("acl-2")
    for entry in (icmp, v6):
        assert rules.check("ec2", "CreateNetworkAclEntry", entry.request("acl-2")) == []
    assert v6.label() == "rule 8 inbound: DENY tcp 6379 from 2600::/64"


def test_moving_a_subnet_returns_the_new_association_id() -> None:
    """ReplaceNetworkAclAssociation as AWS answers it: the subnet's association gets a NEW id
    (NewAssociationId); the one that was passed no longer exists."""
    import boto3
    from botocore.stub import Stubber

    ec2 = boto3.client("ec2", region_name="us-east-1")
    with Stubber(ec2) as stub:
        stub.add_response(
            "replace_network_acl_association",
            {"NewAssociationId": "aclassoc-new"},
            {"AssociationId": "aclassoc-old", "NetworkAclId": "acl-copy"},
        )
        assert nacl.replace_association(ec2, "aclassoc-old", "acl-copy") == "aclassoc-new"


def test_deleting_an_acl_that_is_gone_is_fine_one_in_use_is_not() -> None:
    import boto3
    from botocore.stub import Stubber

    from rexctl.errors import AwsError

    ec2 = boto3.client("ec2", region_name="us-east-1")
    with Stubber(ec2) as stub:
        stub.add_client_error(
            "delete_network_acl", "InvalidNetworkAclID.NotFound", "The network ACL does not exist"
        )
        stub.add_client_error(
            "delete_network_acl",
            "DependencyViolation",
            "The network ACL 'acl-copy' has dependencies and cannot be deleted.",
        )
        nacl.delete_acl(ec2, "acl-gone")
        with pytest.raises(AwsError, match="DependencyViolation"):
            nacl.delete_acl(ec2, "acl-copy")


def test_an_acl_just_created_is_waited_for() -> None:
    """EC2 is eventually consistent ("Eventual consistency in the Amazon EC2 API"): right after
    CreateNetworkAcl, a call naming the new ACL can fail with InvalidNetworkAclID.NotFound.
    moto finds it at once; AWS's answer is stubbed."""
    import boto3
    from botocore.stub import Stubber

    ec2 = boto3.client("ec2", region_name="us-east-1")
    entry = nacl.AclEntryView(1, False, "6", "deny", "10.0.1.0/24", port_range=(6379, 6379))
    slept: list[float] = []
    with Stubber(ec2) as stub:
        stub.add_client_error(
            "create_network_acl_entry",
            "InvalidNetworkAclID.NotFound",
            "The networkAcl ID 'acl-new' does not exist",
        )
        stub.add_response("create_network_acl_entry", {}, entry.request("acl-new"))
        stub.add_client_error(
            "replace_network_acl_association",
            "InvalidNetworkAclID.NotFound",
            "The networkAcl ID 'acl-new' does not exist",
        )
        stub.add_response("replace_network_acl_association", {"NewAssociationId": "aclassoc-2"})
        nacl.create_entry(ec2, "acl-new", entry, sleep=slept.append)
        assert nacl.replace_association(ec2, "aclassoc-1", "acl-new", sleep=slept.append) == (
            "aclassoc-2"
        )
        stub.assert_no_pending_responses()
    assert slept == [0.2, 0.2]
