"""The parts of `rexctl deploy` / `rexctl rollback`: the plan (`plan.py`) and the wait for a
rollout (`rollout.py`). `rexctl.deploy` puts them together and is the module callers import."""
