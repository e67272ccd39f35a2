"""Network ACL adapter: entries read as dataclasses, and the drill's DENY entries."""

from __future__ import annotations

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
