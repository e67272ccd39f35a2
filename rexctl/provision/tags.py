"""The tags on what rexctl creates (steps 1-11): teardown deletes only what carries them."""

from __future__ import annotations

MANAGED_BY = ("managed-by", "rexctl")
CACHE_ID_TAG = "rexctl:cache-id"


def managed_tags(cache_id: str) -> dict[str, str]:
    """The tags on everything rexctl creates; teardown deletes only what carries them."""
    return {MANAGED_BY[0]: MANAGED_BY[1], CACHE_ID_TAG: cache_id}


def is_managed(tags: dict[str, str]) -> bool:
    return tags.get(MANAGED_BY[0]) == MANAGED_BY[1]
