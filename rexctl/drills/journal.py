"""Drill journals (placeholder until the drills issue lands)."""

from __future__ import annotations


def unrestored_summary() -> str:
    """A warning line when a drill journal is not marked restored; '' when none."""
    return ""
