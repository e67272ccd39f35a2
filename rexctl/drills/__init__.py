"""Failure drills: faults, the journal that makes them undoable, and the runner."""
