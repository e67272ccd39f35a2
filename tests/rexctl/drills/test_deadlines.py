"""Issue 11: every wait of a drill has a deadline on the whole operation, and a signal starts
the restore within a second whatever the network is doing.

These run the real drill course on the real clock, against a fault that lives in memory (so
that only the waits under test take time): an API that trickles its answers, an AWS endpoint
that accepts connections and never answers, and signals sent while the drill is stuck in them.
Each bound asserted is generous against what it bounds (seconds against minutes or forever).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from rexctl.drills import journal as journal_mod
from rexctl.drills import runner
from rexctl.drills.changes import Change
from rexctl.drills.faults import Plan
from rexctl.drills.journal import Journal
from rexctl.drills.lock import drill_lock
from rexctl.drills.observe import Sensors
from rexctl.errors import ExitCode, StateError
from rexctl.probe import probe_once


class MemoryFault:
    """A fault that lives in a flag: injecting and restoring take no time."""

    name = "break-sg"
    expect_new_tasks = False
    not_observed_reason = "not observed"

    def __init__(self) -> None:
        self.in_place = False
        self.sleep: Callable[[float], None] = time.sleep
        self.clock: Callable[[], float] = time.monotonic

    def plan(self, cfg: Any) -> Plan:
        return Plan("break-sg", ["flip the flag"], [], {})

    def inject(self, journal: Journal, save: Callable[[], None]) -> None:
        self.in_place = True

    def restore(self, changes: list[Change], save: Callable[[], None] = lambda: None) -> None:
        self.in_place = False

    def confirm_restored(self, changes: list[Change]) -> list[str]:
        return ["still in place"] if self.in_place else []

    def snapshot(self, changes: list[Change]) -> dict[str, Any]:
        return {}

    def manual_undo(self, changes: list[Change], aws: Mapping[str, str]) -> list[str]:
        return []


class TricklingApi:
    """Answers once from the cache (the steady state before the drill), then sends headers and
    one byte of the body every 0.3 s."""

    def __init__(self) -> None:
        self.count = 0
        self.stop = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                api.count += 1
                if api.count == 1:
                    body = b'{"source": "cache", "data": []}'
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                while not api.stop.wait(0.3):
                    try:
                        self.wfile.write(b" ")
                        self.wfile.flush()
                    except OSError:
                        return
                self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/products"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def trickling() -> Iterator[TricklingApi]:
    api = TricklingApi()
    yield api
    api.close()


@pytest.fixture
def blackhole() -> Iterator[str]:
    """An AWS endpoint that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()
    for s in held:
        s.close()


RUNNING = (2, 2, [], [], [])


def course(
    state_dir: Path,
    url: str,
    *,
    timeout: float,
    duration: float,
    tasks: Callable[[], Any] = lambda: RUNNING,
) -> tuple[runner.Course, dict[str, float]]:
    """A real-clock course; `seen` gets the time each phase (and each signal) began."""
    http = httpx.Client()
    seen: dict[str, float] = {}

    def probe() -> tuple[int | None, str | None, float, str | None]:
        r = probe_once(http, url, timeout=timeout)
        return r.status, r.source, r.latency_ms, r.error

    def sink(kind: str, data: Any) -> None:
        if kind in ("phase", "signal"):
            seen.setdefault(f"{kind} {data}", time.monotonic())

    options = runner.Options(duration=duration, interval=0.2, settle=0.0, log_every=60)
    return (
        runner.Course(
            sensors=Sensors(probe, tasks, None, timeout=timeout, close=http.close),
            state_dir=state_dir,
            aws_target={"region": "us-east-1"},
            url=url,
            options=options,
            sink=sink,
        ),
        seen,
    )


@pytest.mark.timeout(60)
def test_a_trickling_api_cannot_stretch_the_fault_beyond_its_margin(
    tmp_path: Path, trickling: TricklingApi
) -> None:
    """`chaos break-sg --duration 3` against an API that trickles its answers was still running
    at 10 s: each read was bounded, not the request. Now observation ends at most one request
    timeout (the documented margin) after --duration."""
    fault = MemoryFault()
    c, seen = course(tmp_path, trickling.url, timeout=1.0, duration=2.0)
    record = runner.run(fault, fault.plan(None), c)
    observed = seen["phase restore"] - seen["phase observe"]
    assert observed <= 2.0 + 1.0 + 1.0, f"observation took {observed:.1f} s"
    assert not fault.in_place and record.restore is not None and record.restore.ok
    during = [a for a in record.observations.answers if a.phase == "during"]
    assert during and all(a.error == "timeout after 1.0s" for a in during)
    assert record.outcome == "failed"  # the API did not keep working: it timed out
    verdict = record.verdict
    assert verdict is not None
    assert next(ch for ch in verdict.checks if ch.name == "API still works").status == "failed"


@pytest.mark.timeout(60)
def test_a_signal_starts_the_restore_within_a_second_while_a_request_hangs(
    tmp_path: Path, trickling: TricklingApi
) -> None:
    """SIGINT printed "stopping; the fault is undone first" and 30 s later the drill still ran
    with the fault in place: the flag was only looked at between requests."""
    fault = MemoryFault()
    c, seen = course(tmp_path, trickling.url, timeout=30.0, duration=60.0)

    def interrupt_when_stuck() -> None:
        while "phase observe" not in seen:
            time.sleep(0.05)
        time.sleep(1.0)  # the first request under the fault is trickling by now
        seen["kill"] = time.monotonic()
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_when_stuck, daemon=True).start()
    record = runner.run(fault, fault.plan(None), c)
    assert seen["phase restore"] - seen["kill"] <= 1.0
    assert record.exit_code == int(ExitCode.INTERRUPTED)
    assert not fault.in_place
    [saved] = journal_mod.list_journals(tmp_path)
    assert saved.status == journal_mod.RESTORED


@pytest.mark.timeout(60)
def test_an_aws_endpoint_that_stops_answering_cannot_stretch_the_fault(
    tmp_path: Path, blackhole: str
) -> None:
    """The AWS endpoint died mid-drill: a --duration 20 drill ran 103 s (botocore's timeouts
    and retries, once per look at the tasks). Each look now has a deadline, and none outlives
    the observation by more than the margin."""
    import boto3
    from botocore.config import Config

    from rexctl.aws.session import LOOK

    ecs = boto3.client(
        "ecs",
        region_name="us-east-1",
        endpoint_url=blackhole,
        config=Config(
            connect_timeout=LOOK.connect_timeout,
            read_timeout=LOOK.read_timeout,
            retries={"mode": "adaptive", "max_attempts": LOOK.max_attempts},
        ),
    )
    fault = MemoryFault()

    def tasks() -> Any:
        if not fault.in_place:  # the endpoint answered until the fault went in
            return RUNNING
        ecs.describe_services(cluster="c", services=["s"])  # never answers
        return RUNNING

    c, seen = course(tmp_path, "http://127.0.0.1:9/api/products", timeout=1.0, duration=2.0)
    c.sensors = Sensors(lambda: (200, "cache", 1.0, None), tasks, None, timeout=1.0)
    record = runner.run(fault, fault.plan(None), c)
    observed = seen["phase restore"] - seen["phase observe"]
    assert observed <= 2.0 + 1.0 + 1.0, f"observation took {observed:.1f} s"
    assert record.restore is not None and record.restore.ok and not fault.in_place
    assert any("did not finish within" in n for n in record.observations.notes)


def test_two_drills_started_together_never_both_run(tmp_path: Path) -> None:
    """In 2 of 23 paired starts both drills ran (nothing locked between the check for
    unrestored journals and the journal write). The lock is the kernel's and belongs to an
    open file, so two threads contend for it as two processes do."""
    guard = threading.Lock()
    inside = peak = refused = 0
    with drill_lock(tmp_path, "rexctl chaos first"):
        pass  # the lock file exists, with a note, before the race

    def drill(start: threading.Barrier, name: str) -> None:
        nonlocal inside, peak, refused
        start.wait()
        try:
            with drill_lock(tmp_path, f"rexctl chaos {name}"):
                with guard:
                    inside += 1
                    peak = max(peak, inside)
                time.sleep(0.002)
                with guard:
                    inside -= 1
        except StateError as exc:
            assert exc.message.startswith(
                f"Another drill command is running with state directory {tmp_path}: rexctl chaos "
            )
            with guard:
                refused += 1

    for _ in range(50):
        start = threading.Barrier(2)
        threads = [threading.Thread(target=drill, args=(start, n)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert peak == 1, "two drills held the lock at once"
    assert refused > 0, "the starts did overlap (else this test proved nothing)"


def test_the_lock_dies_with_its_process(tmp_path: Path) -> None:
    """A crashed drill (SIGKILL) cannot leave the lock held: the kernel releases it."""
    import subprocess
    import sys

    code = (
        "import sys, time; from pathlib import Path; from rexctl.drills.lock import drill_lock\n"
        "with drill_lock(Path(sys.argv[1]), 'rexctl chaos break-nacl'):\n"
        "    print('held', flush=True); time.sleep(60)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            with pytest.raises(StateError) as err, drill_lock(tmp_path, "rexctl chaos break-sg"):
                pass
            assert f"rexctl chaos break-nacl (pid {holder.pid} on " in err.value.message
            holder.kill()
            holder.wait(10)
            with drill_lock(tmp_path, "rexctl chaos break-sg"):
                pass
        finally:
            holder.kill()
