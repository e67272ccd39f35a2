"""Ask the API while a rehearsal step runs, as a drill does: `rexctl rehearse --enable-later`
watches TLS and AUTH being turned on with it.

`ApiWatch` sends one GET every `interval` seconds on a thread of its own (`rexctl.probe.probe_once`
on one kept-alive client, as the drills' probe) from before the step starts until shortly after it
ended, and keeps each answer in the shape of a drill's `observations.answers`
(`rexctl.drills.observe.Answer`: t, phase before/during/after, status, source, latency_ms, error),
so the same report can draw both. `summary` says what a reader wants to know: did any answer fail,
and did the cache keep answering (the longest stretch without a cache answer). Given `sample`, it
also looks at the service's tasks once a second (`task_samples`, in the shape of a drill's: t,
running, desired, stopped), so the report shows a rollout as it shows a drill's restarts.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from rexctl.drills.observe import Answer

BEFORE_SECONDS = 1.0  # answers taken before the step starts, to compare with
AFTER_SECONDS = 2.0  # ...and after it ended
SAMPLE_EVERY = 1.0  # seconds between looks at the service's tasks


@dataclass
class Summary:
    answers: int
    failed: int
    sources: dict[str, int]
    longest_without_cache: float  # seconds, during the step (from its first answer)
    cache_after: bool  # the cache answers once the step is over

    def to_dict(self) -> dict[str, Any]:
        return {
            "answers": self.answers,
            "failed": self.failed,
            "sources": dict(self.sources),
            "longest_without_cache_s": round(self.longest_without_cache, 2),
            "cache_after": self.cache_after,
        }


@dataclass
class ApiWatch:
    url: str
    interval: float = 0.25
    timeout: float = 5.0
    clock: Callable[[], float] = time.monotonic
    answers: list[Answer] = field(default_factory=list)
    # The service's tasks now: {"running", "desired", "stopped": [{"arn", ...}]} (None: not looked)
    sample: Callable[[], dict[str, Any]] | None = None
    task_samples: list[dict[str, Any]] = field(default_factory=list)
    _phase: str = "before"
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _sampler: threading.Thread | None = None
    _start: float = 0.0
    started_at: str = ""  # t = 0 on the wall clock (ISO 8601, UTC), as a drill record says it

    def __enter__(self) -> ApiWatch:
        from datetime import UTC, datetime

        self._start = self.clock()
        self.started_at = datetime.now(UTC).isoformat()
        self._thread = threading.Thread(target=self._run, name="rehearse-api-watch", daemon=True)
        self._thread.start()
        if self.sample is not None:
            self._sampler = threading.Thread(
                target=self._sample, name="rehearse-task-watch", daemon=True
            )
            self._sampler.start()
        deadline = self.clock() + BEFORE_SECONDS
        while self.clock() < deadline and not self._stop.is_set():
            time.sleep(0.05)
        self._phase = "during"
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._phase = "after"
        if kind is None:
            deadline = self.clock() + AFTER_SECONDS
            while self.clock() < deadline:
                time.sleep(0.05)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 1)
        if self._sampler is not None:
            self._sampler.join(self.timeout + 1)

    def _run(self) -> None:
        import httpx

        from rexctl.probe import probe_once

        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            index = 0
            while not self._stop.is_set():
                index += 1
                phase = self._phase
                sent = self.clock()
                r = probe_once(client, self.url, index=index, timeout=self.timeout)
                t = round(sent - self._start, 3)
                answer = Answer(t, phase, r.status, r.source, r.latency_ms, r.error)
                self.answers.append(answer)
                self._stop.wait(max(self.interval - (self.clock() - sent), 0.0))

    def _sample(self) -> None:
        assert self.sample is not None
        while not self._stop.is_set():
            t = round(self.clock() - self._start, 3)
            try:
                seen = self.sample()
            except Exception:  # a look that failed leaves a gap in the strip, nothing more
                seen = None
            if seen is not None:
                self.task_samples.append({"t": t, **seen})
            self._stop.wait(SAMPLE_EVERY)

    def summary(self) -> Summary:
        return summarize(self.answers)

    def at(self, when: str) -> float | None:
        """The t (seconds since the watch started) of a wall-clock ISO time; None when it
        cannot be read."""
        from datetime import datetime

        try:
            start = datetime.fromisoformat(self.started_at).timestamp()
            return round(datetime.fromisoformat(when).timestamp() - start, 3)
        except (TypeError, ValueError):
            return None


def step_marks(watch: ApiWatch, timeline: Any) -> list[dict[str, Any]]:
    """The steps a watched command says it did (its JSON's `timeline`: step, kind, started_at,
    ended_at), placed on the watch's time axis: t (start) and t_end."""
    marks = []
    for entry in timeline if isinstance(timeline, list) else []:
        if not isinstance(entry, dict):
            continue
        t, end = watch.at(str(entry.get("started_at"))), watch.at(str(entry.get("ended_at")))
        if t is not None:
            marks.append(
                {
                    "t": t,
                    "t_end": end if end is not None else t,
                    "step": str(entry.get("step", "")),
                    "kind": str(entry.get("kind", "")),
                }
            )
    return marks


def summarize(answers: list[Answer]) -> Summary:
    during = [a for a in answers if a.phase == "during"]
    longest = 0.0
    last_cache = during[0].t if during else 0.0
    for a in during:
        if a.ok and a.source == "cache":
            last_cache = a.t
        else:
            longest = max(longest, a.t - last_cache)
    after = [a for a in answers if a.phase == "after"]
    return Summary(
        answers=len(answers),
        failed=sum(not a.ok for a in answers),
        sources=dict(Counter(a.source or "none" for a in answers)),
        longest_without_cache=longest,
        cache_after=any(a.ok and a.source == "cache" for a in after),
    )
