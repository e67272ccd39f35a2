"""rexctl probe: percentiles and summaries (unit), the probe against a scripted local backend
(functional), and the command through CliRunner."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from rexctl import __version__
from rexctl.cli import app
from rexctl.errors import UsageError
from rexctl.probe import (
    ProbeReport,
    ProbeResult,
    describe_error,
    failure_message,
    parse_headers,
    percentile,
    probe_once,
    run_probe,
    source_of,
    summarize,
    table_rows,
)
from tests.helpers import RedisServer, ServiceProcess, free_port

runner = CliRunner()
WIDE = {"COLUMNS": "200"}  # keep table cells on one line


# --- a tiny scripted backend -------------------------------------------------------------------


class Backend:
    """Answers like the seed on /api/products (db first, cache after) plus misbehaving paths."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests: list[dict[str, str]] = []
        self.release = threading.Event()  # ends /slow early at teardown
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with backend.lock:
                    backend.hits[self.path] += 1
                    nth = backend.hits[self.path]
                    backend.requests.append(dict(self.headers.items()))
                    backend.in_flight += 1
                    backend.max_in_flight = max(backend.max_in_flight, backend.in_flight)
                try:
                    backend.answer(self, self.path, nth)
                finally:
                    with backend.lock:
                        backend.in_flight -= 1

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def answer(self, h: BaseHTTPRequestHandler, path: str, nth: int) -> None:
        first = nth == 1
        if path == "/api/products":
            if first:
                time.sleep(0.03)
            source = "db" if first else "cache"
            self.send(
                h, 200, {"source": source, "data": []}, {"X-Cache": "MISS" if first else "HIT"}
            )
        elif path == "/always-db":
            self.send(h, 200, {"source": "db", "data": []})
        elif path == "/error":
            self.send(h, 500, {"error": "boom"})
        elif path == "/flaky":
            self.send(h, 503 if nth % 3 == 0 else 200, {"source": "cache"})
        elif path == "/badjson":
            self.send(h, 200, "<html>oops</html>")
        elif path == "/slow":
            self.release.wait(5)  # then hang up: the client gave up long ago
            h.close_connection = True
        elif path == "/trickle":  # headers at once, then one byte of the body every 0.1 s
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", "1000")
            h.end_headers()
            for _ in range(1000):
                if self.release.wait(0.1):
                    break
                h.wfile.write(b" ")
                h.wfile.flush()
            h.close_connection = True
        elif path == "/xcache-only":
            self.send(h, 200, {"data": []}, {"X-Cache": "MISS" if first else "HIT"})
        elif path == "/conflict":
            self.send(h, 200, {"source": "db"}, {"X-Cache": "Hit from cloudfront"})
        elif path == "/custom":
            self.send(h, 200, {"origin": "cache", "source": "db"})
        elif path == "/nosource":
            self.send(h, 200, {"data": []})
        elif path == "/redirect":
            self.send(h, 301, "", {"Location": "https://example.invalid/api/products"})
        elif path == "/busy":
            time.sleep(0.1)
            self.send(h, 200, {"source": "cache"})
        else:
            self.send(h, 404, {"error": "not found"})

    @staticmethod
    def send(
        h: BaseHTTPRequestHandler, status: int, body: object, headers: dict[str, str] | None = None
    ) -> None:
        raw = (body if isinstance(body, str) else json.dumps(body)).encode()
        h.send_response(status)
        h.send_header("Content-Type", "text/html" if isinstance(body, str) else "application/json")
        h.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(raw)


@pytest.fixture
def backend() -> Iterator[Backend]:
    b = Backend()
    b.thread.start()
    try:
        yield b
    finally:
        b.release.set()
        b.server.shutdown()
        b.server.server_close()
        b.thread.join(5)


def result(
    index: int, latency: float, source: str | None = "cache", error: str | None = None
) -> ProbeResult:
    status = None if error and not error.startswith("HTTP") else 200
    return ProbeResult(index, status, source, latency, error, None, 0.0)


# --- unit: percentiles, summaries, sources, messages -------------------------------------------


def test_percentile_is_nearest_rank() -> None:
    values = [7.0, 1.0, 10.0, 3.0, 2.0, 9.0, 4.0, 8.0, 6.0, 5.0]  # 1..10, unsorted
    assert percentile(values, 50) == 5.0
    assert percentile(values, 90) == 9.0
    assert percentile(values, 95) == 10.0
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 10.0
    hundred = [float(v) for v in range(1, 101)]
    assert (percentile(hundred, 95), percentile(hundred, 99)) == (95.0, 99.0)
    assert percentile([42.0], 99) == 42.0


def test_percentile_refuses_no_values_and_bad_q() -> None:
    with pytest.raises(ValueError, match="percentile of no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], 101)


def test_summarize_groups_ok_results_by_source_and_computes_speedup() -> None:
    results = [
        result(1, 1500.0, "db"),
        result(2, 3.0),
        result(3, 2.0),
        result(4, 4.0),
        result(5, 1600.0, "db"),
        result(6, 9000.0, None, "timeout after 10.0s"),  # failures stay out of the summaries
        result(7, 20.0, None),
        result(8, 30.0, "replica"),
    ]
    summaries, speedup = summarize(results)
    assert [(s.source, s.count) for s in summaries] == [
        ("db", 2), ("cache", 3), ("replica", 1), ("unknown", 1),
    ]  # fmt: skip
    db, cache = summaries[0], summaries[1]
    assert (db.p50, db.p95, db.p99, db.max) == (1500.0, 1600.0, 1600.0, 1600.0)
    assert (cache.p50, cache.max) == (3.0, 4.0)
    assert speedup == 500.0


def test_speedup_is_none_when_one_side_is_missing() -> None:
    assert summarize([result(1, 5.0, "cache"), result(2, 4.0, "cache")])[1] is None
    assert summarize([result(1, 1500.0, "db")])[1] is None
    assert summarize([]) == ([], None)


def test_source_precedence_body_field_then_x_cache() -> None:
    assert source_of({"source": "db"}, "HIT") == "db"  # the body wins over a CDN's header
    assert source_of({"data": []}, "HIT") == "cache"
    assert source_of({"data": []}, "MISS") == "db"
    assert source_of({"data": []}, "Hit from cloudfront") == "cache"
    assert source_of({"data": []}, "miss from cloudfront") == "db"
    assert source_of({"data": []}, "EXPIRED") == "EXPIRED"
    assert source_of({"source": ""}, None) is None
    assert source_of([1, 2], "HIT") == "cache"
    assert source_of({"origin": "cache"}, None, "origin") == "cache"
    assert source_of({"source": 3}, None) is None


def _raising_client(exc: Exception) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return httpx.Client(transport=httpx.MockTransport(handler))


def _chained(outer: Exception, cause: Exception) -> Exception:
    try:
        raise outer from cause
    except Exception as exc:
        return exc


def test_dns_and_tls_failures_are_named() -> None:
    dns = _chained(httpx.ConnectError("[Errno -2] Name or service not known"),
                   socket.gaierror(-2, "Name or service not known"))  # fmt: skip
    with _raising_client(dns) as client:
        r = probe_once(client, "https://products.example/api/products", index=3)
    assert (r.index, r.status, r.ok) == (3, None, False)
    assert r.error == "DNS lookup failed for products.example"
    tls_cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    tls_cause.reason = "CERTIFICATE_VERIFY_FAILED"
    tls = _chained(httpx.ConnectError("certificate verify failed"), tls_cause)
    assert describe_error(tls, 10) == "TLS error: CERTIFICATE_VERIFY_FAILED"
    assert describe_error(httpx.ConnectTimeout("x"), 2) == "connect timeout after 2.0s"
    closed = httpx.RemoteProtocolError("Server disconnected without sending a response.")
    assert describe_error(closed, 2) == "connection closed by server"


def test_parse_headers() -> None:
    assert parse_headers(["Authorization: Bearer a:b", "X-Empty:"]) == {
        "Authorization": "Bearer a:b",
        "X-Empty": "",
    }
    with pytest.raises(UsageError, match=r"^Bad --header 'nocolon': expected 'Name: value'\.$"):
        parse_headers(["nocolon"])
    with pytest.raises(UsageError, match="Bad --header 'Two words: x'"):
        parse_headers(["Two words: x"])
    with pytest.raises(UsageError, match=r"^Bad --header 'X-A: é': the value must be printable"):
        parse_headers(["X-A: é"])


def test_failure_message_counts_reasons() -> None:
    results = [result(1, 1.0), result(2, 1.0, None, "HTTP 503"), result(3, 1.0, None, "HTTP 503"),
               result(4, 10.0, None, "timeout after 10.0s")]  # fmt: skip
    report = ProbeReport("http://x", results, *summarize(results))
    assert failure_message(report) == "3 of 4 requests failed: HTTP 503 ×2, timeout after 10.0s ×1."
    assert (report.ok, report.failed) == (False, 3)


def test_long_runs_show_the_first_rows_and_every_failure() -> None:
    results = [result(i, 1.0, error="HTTP 500" if i in (5, 250) else None) for i in range(1, 301)]
    shown = table_rows(results, limit=200)
    assert [r.index for r in shown] == [*range(1, 21), 250]
    assert table_rows(results[:200], limit=200) == results[:200]


# --- functional: the probe against the local backend -------------------------------------------


def test_first_answer_from_db_then_cache(backend: Backend) -> None:
    seen: list[int] = []
    report = run_probe(
        f"{backend.url}/api/products", requests=4, on_result=lambda r: seen.append(r.index)
    )
    assert [r.source for r in report.results] == ["db", "cache", "cache", "cache"]
    assert [r.x_cache for r in report.results] == ["MISS", "HIT", "HIT", "HIT"]
    assert [r.status for r in report.results] == [200] * 4
    assert seen == [1, 2, 3, 4]
    assert report.ok and report.failed == 0
    db, cache = report.summary("db"), report.summary("cache")
    assert db is not None and cache is not None
    assert (db.count, cache.count) == (1, 3)
    assert report.speedup == db.p50 / cache.p50
    assert all(r.started_at > time.time() - 60 for r in report.results)


def test_user_agent_and_extra_headers_are_sent(backend: Backend) -> None:
    run_probe(f"{backend.url}/api/products", requests=1, headers={"X-Probe": "yes"})
    run_probe(f"{backend.url}/api/products", requests=1, headers={"User-Agent": "mine"})
    assert backend.requests[0]["User-Agent"] == f"rexctl/{__version__}"
    assert backend.requests[0]["X-Probe"] == "yes"
    assert backend.requests[1]["User-Agent"] == "mine"


def test_http_errors_and_invalid_json_are_failures(backend: Backend) -> None:
    report = run_probe(f"{backend.url}/error", requests=2)
    assert [(r.status, r.error, r.ok) for r in report.results] == [(500, "HTTP 500", False)] * 2
    assert (report.ok, report.failed, report.summaries, report.speedup) == (False, 2, [], None)
    bad = run_probe(f"{backend.url}/badjson", requests=1).results[0]
    assert (bad.status, bad.error) == (200, "invalid JSON")


def test_redirects_are_reported_not_followed(backend: Backend) -> None:
    r = run_probe(f"{backend.url}/redirect", requests=1).results[0]
    assert (r.status, r.error) == (301, "HTTP 301 redirect to https://example.invalid/api/products")


def test_timeout_is_reported_and_does_not_hang(backend: Backend) -> None:
    start = time.monotonic()
    report = run_probe(f"{backend.url}/slow", requests=2, timeout=0.2)
    elapsed = time.monotonic() - start
    assert [(r.status, r.error) for r in report.results] == [(None, "timeout after 0.2s")] * 2
    assert all(r.latency_ms >= 150 for r in report.results)
    assert elapsed < 2 * 0.2 + 3  # two timeouts plus generous slack, nowhere near the 5 s stall


def test_connection_refused() -> None:
    report = run_probe(f"http://127.0.0.1:{free_port()}/api/products", requests=2)
    assert [(r.status, r.error) for r in report.results] == [(None, "connection refused")] * 2


def test_x_cache_header_alone_decides_and_body_field_wins(backend: Backend) -> None:
    header_only = run_probe(f"{backend.url}/xcache-only", requests=3)
    assert [r.source for r in header_only.results] == ["db", "cache", "cache"]
    assert header_only.speedup is not None
    both = run_probe(f"{backend.url}/conflict", requests=1).results[0]
    assert (both.source, both.x_cache) == ("db", "Hit from cloudfront")
    custom = run_probe(f"{backend.url}/custom", requests=1, source_field="origin").results[0]
    assert custom.source == "cache"
    unknown = run_probe(f"{backend.url}/nosource", requests=2)
    assert unknown.ok and [s.source for s in unknown.summaries] == ["unknown"]


def test_concurrency_bounds_requests_in_flight(backend: Backend) -> None:
    seen: list[int] = []
    report = run_probe(
        f"{backend.url}/busy", requests=9, concurrency=3, on_result=lambda r: seen.append(r.index)
    )
    assert backend.max_in_flight == 3
    assert [r.index for r in report.results] == list(range(1, 10))
    assert sorted(seen) == list(range(1, 10))
    assert report.ok


def test_sequential_by_default(backend: Backend) -> None:
    run_probe(f"{backend.url}/busy", requests=3)
    assert backend.max_in_flight == 1


def test_a_caller_client_is_reused_and_left_open(backend: Backend) -> None:
    with httpx.Client() as client:
        report = run_probe(f"{backend.url}/flaky", requests=3, concurrency=2, client=client)
        assert not client.is_closed
        again = probe_once(client, f"{backend.url}/api/products", index=7)
    assert sorted(r.status or 0 for r in report.results) == [200, 200, 503]
    assert (again.index, again.source, again.ok) == (7, "db", True)


def test_report_to_dict_shape(backend: Backend) -> None:
    data = run_probe(f"{backend.url}/api/products", requests=2).to_dict()
    assert set(data) == {"url", "requests", "ok", "failed", "speedup", "summaries", "results"}
    assert set(data["summaries"][0]) == {"source", "count", "p50_ms", "p95_ms", "p99_ms", "max_ms"}
    assert set(data["results"][0]) == {
        "index", "ok", "status", "source", "latency_ms", "error", "x_cache", "started_at",
    }  # fmt: skip
    assert json.loads(json.dumps(data)) == data


# --- the command ------------------------------------------------------------------------------


def test_cli_table_and_summary(backend: Backend) -> None:
    result = runner.invoke(app, ["probe", f"{backend.url}/api/products", "-n", "3"], env=WIDE)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"GET {backend.url}/api/products" in out
    lines = [" ".join(line.replace("│", " ").split()) for line in out.splitlines()]
    assert any(line.startswith("1 200 db ") and line.endswith(" OK") for line in lines), out
    assert any(line.startswith("3 200 cache ") for line in lines), out
    assert any(line.startswith("db 1 ") for line in lines), out
    assert any(line.startswith("cache 2 ") for line in lines), out
    assert "Speed-up (p50 db / p50 cache): " in out and "×" in out
    assert "✓ 3 of 3 requests succeeded." in result.stderr


def test_cli_json(backend: Backend) -> None:
    result = runner.invoke(app, ["probe", f"{backend.url}/api/products", "-n", "2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["ok"], data["requests"], data["failed"]) == (True, 2, 0)
    assert [r["source"] for r in data["results"]] == ["db", "cache"]
    assert [s["source"] for s in data["summaries"]] == ["db", "cache"]
    assert isinstance(data["speedup"], float)
    root_flag = runner.invoke(app, ["--json", "probe", f"{backend.url}/api/products", "-n", "1"])
    assert root_flag.exit_code == 0, root_flag.output
    assert json.loads(root_flag.stdout)["results"][0]["source"] == "cache"


def test_cli_failures_exit_1_without_traceback(backend: Backend) -> None:
    result = runner.invoke(app, ["probe", f"{backend.url}/error", "-n", "2"], env=WIDE)
    assert result.exit_code == 1, result.output
    assert "Error: 2 of 2 requests failed: HTTP 500 ×2." in result.stderr
    assert "HTTP 500" in result.stdout
    assert "Speed-up (p50 db / p50 cache): n/a (no db or cache answers)" in result.stdout
    as_json = runner.invoke(app, ["probe", f"{backend.url}/flaky", "-n", "3", "--json"])
    assert as_json.exit_code == 1, as_json.output
    assert json.loads(as_json.stdout)["failed"] == 1
    assert "Error: 1 of 3 requests failed: HTTP 503 ×1." in as_json.stderr


def test_the_timeout_bounds_the_whole_request_not_each_read(backend: Backend) -> None:
    """Issue 11: an API that sends its headers and then trickles its body (a byte every 0.1 s,
    well inside any read timeout) held the probe for as long as it liked; the timeout now
    bounds connect, headers and body together."""
    started = time.monotonic()
    report = run_probe(f"{backend.url}/trickle", requests=1, timeout=0.5)
    elapsed = time.monotonic() - started
    assert [(r.status, r.error) for r in report.results] == [(None, "timeout after 0.5s")]
    assert elapsed < 0.5 + 2  # the body alone would take 100 s
    assert report.results[0].latency_ms < 2500


def test_cli_connection_refused_and_timeout(backend: Backend) -> None:
    url = f"http://127.0.0.1:{free_port()}/api/products"
    refused = runner.invoke(app, ["probe", url, "-n", "2"], env=WIDE)
    assert refused.exit_code == 1, refused.output
    assert "Error: 2 of 2 requests failed: connection refused ×2." in refused.stderr
    assert "Traceback" not in refused.output and refused.exception is not None
    slow = runner.invoke(app, ["probe", f"{backend.url}/slow", "-n", "1", "--timeout", "0.2"])
    assert slow.exit_code == 1, slow.output
    assert "Error: 1 of 1 requests failed: timeout after 0.2s ×1." in slow.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ftp://host/x"], "Error: URL must start with http:// or https:// and name a host, "
                           "got 'ftp://host/x'."),
        (["http://127.0.0.1:1/x", "-n", "0"],
         "Error: Number of requests (-n) must be between 1 and 100000, got 0."),
        (["http://127.0.0.1:1/x", "-n", "100001"],
         "Error: Number of requests (-n) must be between 1 and 100000, got 100001."),
        (["http://127.0.0.1:1/x", "--concurrency", "0"],
         "Error: Concurrency (--concurrency) must be between 1 and 1000, got 0."),
        (["http://127.0.0.1:1/x", "--timeout", "0"],
         "Error: Timeout (--timeout) must be a positive number of seconds, got 0.0."),
        (["http://[::1/x"], "Error: Bad URL 'http://[::1/x': Invalid IPv6 URL."),
        (["http://127.0.0.1:99999/x"],
         "Error: Bad URL 'http://127.0.0.1:99999/x': Port out of range 0-65535."),
        (["http://:80/x"], "Error: URL must start with http:// or https:// and name a host, "
                           "got 'http://:80/x'."),
        (["http://127.0.0.1:1/x", "--header", "oops"],
         "Error: Bad --header 'oops': expected 'Name: value'."),
    ],
)  # fmt: skip
def test_cli_bad_input_exits_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["probe", *args], env=WIDE)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_cli_a_url_without_scheme_gets_an_example_for_the_bundled_service() -> None:
    result = runner.invoke(app, ["probe", "127.0.0.1:3000/api/products"], env=WIDE)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1] == (
        "Example: rexctl probe http://127.0.0.1:3000/api/products"  # its default PORT
    )


def test_cli_url_from_config(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REXCTL_APP_URL", raising=False)
    missing = runner.invoke(app, ["probe"], env=WIDE)
    assert missing.exit_code == 2, missing.output
    assert "Error: No URL to probe." in missing.stderr
    assert "set app.url in rexctl.toml (REXCTL_APP_URL)" in missing.stderr
    (tmp_path / "rexctl.toml").write_text(f'[app]\nurl = "{backend.url}/api/products"\n')
    from_file = runner.invoke(app, ["probe", "-n", "1", "--json"])
    assert from_file.exit_code == 0, from_file.output
    assert json.loads(from_file.stdout)["url"] == f"{backend.url}/api/products"


def test_cli_warns_when_no_answer_comes_from_the_cache(backend: Backend) -> None:
    result = runner.invoke(app, ["probe", f"{backend.url}/always-db", "-n", "2"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "Warning: No answer came from the cache" in result.stderr
    assert "n/a (no cache answers)" in result.stdout
    nosource = runner.invoke(app, ["probe", f"{backend.url}/nosource", "-n", "1"], env=WIDE)
    assert nosource.exit_code == 0, nosource.output
    assert "no 'source' field in the body, no X-Cache header" in nosource.stderr


def test_cli_help_lists_options_and_root_help_does_not_import_httpx() -> None:
    result = runner.invoke(app, ["probe", "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    for option in ("-n", "--concurrency", "--timeout", "--source-field", "--header", "--json"):
        assert option in result.stdout
    code = "import sys; from rexctl.cli import app; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cli_against_the_bundled_service(tmp_path: Path, redis_server: RedisServer) -> None:
    """The README's first run: db first, then cache; with Redis gone, every answer from db."""
    env = {"REDIS_ENABLED": "true", "REDIS_HOST": redis_server.host,
           "REDIS_PORT": str(redis_server.port), "DB_DELAY_MS": "300", "NEAR_CACHE_TTL_MS": "0",
           "REDIS_TIMEOUT_MS": "200"}  # fmt: skip
    service = ServiceProcess(env, tmp_path)
    service.start()
    try:
        url = f"{service.url}/api/products"
        first = runner.invoke(app, ["probe", url, "-n", "4", "--json"])
        assert first.exit_code == 0, first.output
        data = json.loads(first.stdout)
        assert [r["source"] for r in data["results"]] == ["db", "cache", "cache", "cache"]
        assert [r["x_cache"] for r in data["results"]] == ["MISS", "HIT", "HIT", "HIT"]
        db, cache = data["summaries"]
        assert (db["source"], db["count"], cache["source"], cache["count"]) == ("db", 1, "cache", 3)
        assert db["p50_ms"] >= 300  # the database delay was paid, so the answer really was db
        assert data["speedup"] == pytest.approx(db["p50_ms"] / cache["p50_ms"], rel=0.01)

        redis_server.stop()
        down = runner.invoke(app, ["probe", url, "-n", "2"], env=WIDE)
        assert down.exit_code == 0, down.output
        assert "Warning: No answer came from the cache" in down.stderr
        assert "n/a (no cache answers)" in down.stdout
    finally:
        service.stop()
