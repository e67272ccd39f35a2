"""Side-by-side benchmark: the bundled service against the seed's Express backend, in one run.

Prints one table of figures (issue 2's targets) measured on this machine, now:

- cache-hit throughput and latency at 32 connections (wrk -t1 -c32), one process each;
- while Redis is frozen (SIGSTOP): the slowest request, and the cost once the breaker is open;
- after Redis is killed and started again: how long until answers come from the cache again;
- 50 concurrent cold requests: how many database reads they caused;
- resident memory of each server after the load;
- the wall time of `rexctl --help` next to `aws --version` (the AWS CLI from PyPI).

Both peers get their own redis-server on free loopback ports and the same DB_DELAY_MS. Absolute
figures vary from run to run on a shared machine: compare the ratios within one run.

Usage: scripts/bench   (installs wrk, hey and the AWS CLI if they are missing)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED_DIR = Path(os.environ.get("SEED_DIR", ROOT.parent / "shared" / "anchors" / "seed-express"))
DB_DELAY_MS = 1500
REDIS_TIMEOUT_MS = 200
WORK = Path(tempfile.mkdtemp(prefix="rexctl-bench-"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"bench: {url} did not answer within {timeout}s")


def get(url: str, timeout: float = 10) -> tuple[float, str]:
    """(seconds, source) for one GET; source 'timeout' when the client gave up."""
    start = time.perf_counter()
    try:
        body = urllib.request.urlopen(url, timeout=timeout).read()
        source = json.loads(body).get("source", "?")
    except OSError:
        source = "timeout"
    return time.perf_counter() - start, source


class Redis:
    def __init__(self, name: str) -> None:
        self.port = free_port()
        self.dir = WORK / name
        self.dir.mkdir()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(100):
            if self.cli("ping") == "PONG":
                return
            time.sleep(0.05)

    def cli(self, *args: str) -> str:
        out = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True,
                             text=True, timeout=5)  # fmt: skip
        return out.stdout.strip()

    def kill(self) -> None:
        assert self.proc
        os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.kill()
        self.proc.wait()

    def signal(self, sig: int) -> None:
        assert self.proc
        os.kill(self.proc.pid, sig)


class Peer:
    """One backend under test: its process, its Redis, how to count its database reads."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.redis = Redis(name)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}/api/products"
        self.log = WORK / f"{name}.log"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "REDIS_ENABLED": "true",
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(self.redis.port),
            "PORT": str(self.port),
            "DB_DELAY_MS": str(DB_DELAY_MS),
        }

    def command(self) -> tuple[list[str], Path]:
        raise NotImplementedError

    def db_reads(self) -> int:
        raise NotImplementedError

    def start(self) -> None:
        self.redis.start()
        cmd, cwd = self.command()
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=self.env(), stdout=self.log.open("wb"),
                                     stderr=subprocess.STDOUT)  # fmt: skip
        wait_http(f"http://127.0.0.1:{self.port}/health")

    def rss_mib(self) -> float:
        assert self.proc
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        kib = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        return kib / 1024

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
        if self.redis.proc and self.redis.proc.poll() is None:
            self.redis.kill()


class Ours(Peer):
    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            "REDIS_TIMEOUT_MS": str(REDIS_TIMEOUT_MS),
            "DATABASE_PATH": str(WORK / "products.sqlite3"),
            "HOST": "127.0.0.1",
        }

    def command(self) -> tuple[list[str], Path]:
        return [sys.executable, "-m", "service"], ROOT

    def db_reads(self) -> int:
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics").read().decode()
        match = re.search(r"^products_db_reads_total (\S+)$", text, re.M)
        return int(float(match.group(1))) if match else -1


class Seed(Peer):
    def command(self) -> tuple[list[str], Path]:
        work = WORK / "seed"
        shutil.copytree(SEED_DIR / "src", work / "src")
        shutil.copy(SEED_DIR / "package.json", work / "package.json")
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund"], cwd=work,
                       check=True, capture_output=True)  # fmt: skip
        return ["node", "src/server.js"], work

    def db_reads(self) -> int:
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/products/_dbcalls").read()
        return int(json.loads(body)["dbCalls"])


def wrk(url: str) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t1", "-c32", "-d8s", "--latency", url], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50": ms("50%"),
        "p99": ms("99%"),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def stampede(peer: Peer) -> int:
    peer.redis.cli("flushall")
    time.sleep(1.5)  # longer than any in-process near-cache entry lives
    before = peer.db_reads()
    subprocess.run(["hey", "-n", "50", "-c", "50", peer.url], capture_output=True, check=True)
    return peer.db_reads() - before


def frozen(peer: Peer) -> dict[str, object]:
    """SIGSTOP Redis; send requests one after another for a while; SIGCONT."""
    get(peer.url)
    peer.redis.signal(signal.SIGSTOP)
    times: list[tuple[float, str]] = []
    try:
        deadline = time.monotonic() + 9
        while time.monotonic() < deadline:
            times.append(get(peer.url, timeout=8))
    finally:
        peer.redis.signal(signal.SIGCONT)
    slowest = max(t for t, _ in times)
    # Once the breaker is open: the later requests that went to the database.
    db_times = [t for t, s in times[2:] if s == "db"]
    return {
        "requests": len(times),
        "slowest_s": slowest,
        "timeouts": sum(1 for _, s in times if s == "timeout"),
        "open_overhead_ms": (statistics.median(db_times) * 1000 - DB_DELAY_MS)
        if db_times
        else None,
    }


def recovery(peer: Peer) -> float | None:
    """Kill Redis, restart it on the same port, and time how long until a cache answer."""
    peer.redis.kill()
    get(peer.url, timeout=8)
    peer.redis.start()
    start = time.monotonic()
    while time.monotonic() - start < 10:
        _, source = get(peer.url, timeout=8)
        if source == "cache":
            return time.monotonic() - start
        time.sleep(0.1)
    return None


def cli_wall(cmd: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(peer: Peer) -> dict[str, object]:
    peer.start()
    try:
        get(peer.url)
        get(peer.url)
        result: dict[str, object] = {"hits": wrk(peer.url)}
        result["rss_mib"] = peer.rss_mib()
        result["stampede_db_reads"] = stampede(peer)
        result["frozen"] = frozen(peer)
        result["recovery_s"] = recovery(peer)
        return result
    finally:
        peer.stop()


def fmt(value: object, unit: str = "", none: str = "never (10 s)") -> str:
    if value is None:
        return none
    if isinstance(value, float):
        return f"{value:,.1f}{unit}"
    return f"{value}{unit}"


def main() -> None:
    for tool in ("wrk", "hey", "redis-server", "redis-cli", "node", "npm"):
        if not shutil.which(tool):
            raise SystemExit(f"bench: {tool} is missing (scripts/bench installs wrk and hey)")
    if not (SEED_DIR / "package.json").exists():
        raise SystemExit(f"bench: the seed peer is not at {SEED_DIR}; set SEED_DIR")
    print(f"bench: machine {os.cpu_count()} cores; DB_DELAY_MS={DB_DELAY_MS}; "
          f"service REDIS_TIMEOUT_MS={REDIS_TIMEOUT_MS}; work dir {WORK}", flush=True)  # fmt: skip
    seed = measure(Seed("seed"))
    ours = measure(Ours("ours"))
    rexctl = str(Path(sys.executable).parent / "rexctl")
    aws = os.environ.get("AWS_CLI") or shutil.which("aws") or "aws"
    help_s = cli_wall([rexctl, "--help"])
    aws_s = cli_wall([aws, "--version"])

    sh, oh = seed["hits"], ours["hits"]
    sf, of = seed["frozen"], ours["frozen"]
    assert isinstance(sh, dict) and isinstance(oh, dict) and isinstance(sf, dict)
    assert isinstance(of, dict)
    bound = (DB_DELAY_MS + 2 * REDIS_TIMEOUT_MS) / 1000
    rows = [
        ("cache hits, 32 conns: req/s", fmt(sh["rps"]), fmt(oh["rps"]),
         f"ratio {oh['rps'] / sh['rps']:.2f}x (target >= 1.5x)"),
        ("cache hits, 32 conns: p50", fmt(sh["p50"], " ms"), fmt(oh["p50"], " ms"), ""),
        ("cache hits, 32 conns: p99", fmt(sh["p99"], " ms"), fmt(oh["p99"], " ms"),
         "target: ours <= seed"),
        ("cache hits: non-2xx", fmt(sh["non2xx"]), fmt(oh["non2xx"]), ""),
        ("Redis frozen: slowest request", fmt(sf["slowest_s"], " s"), fmt(of["slowest_s"], " s"),
         f"target <= {bound:.2f} s (DB delay + 2 x timeout)"),
        ("Redis frozen: client timeouts (8 s)", fmt(sf["timeouts"]), fmt(of["timeouts"]), ""),
        ("Redis frozen: cost over DB delay, breaker open",
         fmt(sf["open_overhead_ms"], " ms", "no answers"),
         fmt(of["open_overhead_ms"], " ms", "no answers"), "target < 20 ms"),
        ("Redis restarted: first cache hit after", fmt(seed["recovery_s"], " s"),
         fmt(ours["recovery_s"], " s"), "target <= 5 s"),
        ("50 concurrent cold requests: DB reads", fmt(seed["stampede_db_reads"]),
         fmt(ours["stampede_db_reads"]), "target 1"),
        ("RSS after load", fmt(seed["rss_mib"], " MiB"), fmt(ours["rss_mib"], " MiB"), ""),
    ]  # fmt: skip
    width = [max(len(str(r[i])) for r in rows) for i in range(4)]
    header = ("figure", "seed (Express)", "rexctl service", "note")
    width = [max(w, len(h)) for w, h in zip(width, header, strict=True)]
    line = "  ".join("{:<" + str(w) + "}" for w in width)
    print()
    print(line.format(*header))
    print(line.format(*("-" * w for w in width)))
    for row in rows:
        print(line.format(*row))
    print()
    print(f"rexctl --help: {help_s * 1000:.0f} ms   aws --version: {aws_s * 1000:.0f} ms   "
          f"ratio {help_s / aws_s:.2f} (target <= 0.5)   [median of 7 runs each]")  # fmt: skip
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
