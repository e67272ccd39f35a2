"""The HTML report of a drill record: what each drill's page shows, escaping, redaction, and
records of every outcome (from the real drill course, `scenarios`)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from rexctl.drills import report_chart, report_html
from tests.rexctl.drills.scenarios import CHANGES, Scenario, record, timeouts_every

ALWAYS_CACHE = Scenario(
    drill="break-sg", during=lambda i: (200, "cache", 2.0, None), log_messages=[]
)


def page(*records: dict[str, Any], **kw: Any) -> str:
    return report_html.render(list(records), **kw)


def count(html: str, pattern: str) -> int:
    return len(re.findall(pattern, html))


def chart_of(html: str) -> str:
    """The timeline's SVG (the legend's glyphs are outside it)."""
    start = html.index('<svg class="timeline"')
    return html[start : html.index("</svg>", start)]


def checks_of(rec: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in rec["verdict"]["checks"]}


@pytest.mark.parametrize(
    ("sc", "outcome", "points"),
    [
        (Scenario(drill="break-nacl"), "passed", {"cache": 2, "db": 12}),
        (ALWAYS_CACHE, "not observed", {"cache": 14, "db": 0}),
        (Scenario(drill="wrong-host"), "passed", {"cache": 2, "db": 12}),
    ],
    ids=["break-nacl", "break-sg", "wrong-host"],
)
def test_every_drill_kind_gets_its_chart_and_verdict(
    tmp_path: Path, sc: Scenario, outcome: str, points: dict[str, int]
) -> None:
    rec = record(sc, tmp_path)
    assert rec["outcome"] == outcome
    html = page(rec)
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert (
        f"<h2>{sc.drill} " in html
        and f'class="badge {"ok" if outcome == "passed" else "warn"}">{outcome}<' in html
    )
    # the chart: one mark per answer, by source; the fault window; the restore; cache again
    assert count(html, '<svg class="timeline"') == 1
    svg = chart_of(html)
    assert count(svg, 'class="pt pt-cache"') == points["cache"]
    assert count(svg, 'class="pt pt-db"') == points["db"]
    assert count(svg, 'class="pt pt-fail"') == 0
    assert sum(points.values()) == len(rec["observations"]["answers"])
    assert '<g class="fault-window">' in html and 'class="band band-core"' in html
    assert '<g class="mark-restored">' in html
    assert '<g class="mark-cache-again">' in html
    assert count(html, 'class="log-tick"') == len(rec["observations"]["log_events"]) + 1  # + legend
    # the verdict, every check with its status and evidence
    for name, status in checks_of(rec).items():
        assert re.search(
            rf'<td class="check">{re.escape(name)}</td><td><span class="badge \w+">{status}</span>',
            html,
        ), name
    for c in rec["verdict"]["checks"]:
        for line in c["evidence"]:
            assert report_html.escape(line) in html
    # what was changed, and the journal's story
    assert report_html.escape(report_html.change_lines(CHANGES[sc.drill][0])[0]) in html
    assert "Restored and confirmed by AWS (attempt 1)." in html
    assert "journal written before any change" in html


def test_the_fault_window_comes_from_the_record_marks(tmp_path: Path) -> None:
    rec = record(Scenario(drill="wrong-host"), tmp_path)
    marks = rec["observations"]["marks"]
    assert marks["inject"] < marks["injected"] < marks["restore"] < marks["restored"]
    during = [a["t"] for a in rec["observations"]["answers"] if a["phase"] == "during"]
    assert marks["injected"] <= min(during) and max(during) <= marks["restore"]
    turns = report_chart.turns_of(rec["observations"])
    assert (turns.start, turns.end, turns.exact) == (marks["inject"], marks["restored"], True)
    html = page(rec)
    # wrong-host's rollout takes 2 s each way: a lighter band while it goes in and comes out
    assert count(html, 'class="band band-edge"') == 2
    assert f"(t = {marks['inject']:.1f} s to {marks['restored']:.1f} s)" in html


def test_a_record_without_marks_is_drawn_from_the_answers_phases(tmp_path: Path) -> None:
    """A `--report` file of an earlier rexctl has no marks and no start time."""
    rec = record(Scenario(), tmp_path)
    del rec["observations"]["marks"], rec["observations"]["started_at"]
    turns = report_chart.turns_of(rec["observations"])
    during = [a["t"] for a in rec["observations"]["answers"] if a["phase"] == "during"]
    after = [a["t"] for a in rec["observations"]["answers"] if a["phase"] == "after"]
    assert (turns.start, turns.end, turns.exact) == (during[0], after[0], False)
    html = page(rec)
    assert "the band is drawn from the answers' phases" in html
    assert "the log events are not drawn" in html
    assert count(html, 'class="log-tick"') == 1  # the legend's only
    assert '<g class="fault-window">' in html


def test_a_failed_drill_shows_failures_and_the_tasks_that_changed(tmp_path: Path) -> None:
    rec = record(Scenario(during=timeouts_every(3), replace_task_at=3.0, duration=10), tmp_path)
    assert rec["outcome"] == "failed"
    assert checks_of(rec)["API still works"] == "failed"
    html = page(rec)
    failed = [a for a in rec["observations"]["answers"] if not a["ok"]]
    assert failed and count(chart_of(html), 'class="pt pt-fail"') == len(failed)
    assert "<title>t=" in html and "failed: timeout after 5 s" in html  # a tooltip per point
    assert '<div class="fact bad"><span class="fact-label">answers</span>' in html
    # the replaced task: stopped (with ECS's reason) and its replacement, both flagged
    rows, hidden = report_html.task_rows(rec["observations"])
    by_task = {r["task"]: r for r in rows}
    assert by_task["bbbb2222-old"]["what"].startswith("stopped, seen at t = ")
    assert "Task failed ELB health checks" in by_task["bbbb2222-old"]["what"]
    assert by_task["eeee5555-replacement"]["role"] == "new"
    assert [r["task"] for r in rows if r["concern"]] == ["bbbb2222-old", "eeee5555-replacement"]
    assert by_task["aaaa1111-old"] == {**by_task["aaaa1111-old"], "what": "running throughout",
                                       "concern": False}  # fmt: skip
    assert hidden == 1 and "1 task that had stopped before the drill started are not listed" in html
    assert count(html, 'class="task-stop"') == 1
    assert "(service backend) has started 1 tasks: (task eeee5555)." in html
    assert "(service backend) has reached a steady state." not in html  # from before the drill


def test_wrong_host_tasks_replaced_by_its_own_rollout_are_not_a_concern(tmp_path: Path) -> None:
    rec = record(Scenario(drill="wrong-host"), tmp_path)
    rows, _ = report_html.task_rows(rec["observations"])
    assert {r["task"]: (r["role"], r["concern"]) for r in rows} == {
        "aaaa1111-old": ("before the drill", False),
        "bbbb2222-old": ("before the drill", False),
        "cccc3333-new": ("watched", False),
        "dddd4444-new": ("watched", False),
    }
    assert "Watched: the tasks of the drill's revision <code>rexpress-backend:4</code>" in page(rec)


def test_a_failed_drill_without_a_verdict(tmp_path: Path) -> None:
    rec = record(
        Scenario(drill="wrong-host", inject_error="The new tasks did not come up."), tmp_path
    )
    assert (rec["outcome"], rec["verdict"]) == ("failed", None)
    html = page(rec)
    assert '<div class="box bad"><p><strong>The new tasks did not come up.</strong>' in html
    assert "<h3>Verdict</h3>" not in html
    assert '<span class="fact-label">under the fault</span><span class="fact-value">none' in html
    assert ">cache again<" not in html  # never checked: the drill ended early
    assert 'class="band band-core"' in html and "Restored and confirmed by AWS" in html


def test_an_interrupted_drill(tmp_path: Path) -> None:
    rec = record(Scenario(interrupt_at=2.0), tmp_path)
    assert (rec["outcome"], rec["exit_code"], rec["verdict"]) == ("interrupted", 130, None)
    html = page(rec)
    assert '<span class="badge warn">interrupted</span>' in html
    assert "Interrupted; the break-nacl drill was undone (AWS confirmed)." in html
    assert "<h3>Verdict</h3>" not in html and ">cache again<" not in html
    assert count(chart_of(html), 'class="pt pt-db"') == 4


def test_a_restore_that_failed_says_the_fault_is_still_in_place(tmp_path: Path) -> None:
    rec = record(Scenario(restore_fails=True), tmp_path)
    assert rec["outcome"] == "restore failed"
    html = page(rec)
    assert "fault still in place" in html and '<g class="mark-failed">' in html
    assert '<g class="mark-restored">' not in html
    assert "<strong>Not restored after 2 attempts.</strong>" in html
    assert '<pre class="wrap">aws ec2 undo-break-nacl --region us-east-1</pre>' in html
    assert "attempt 2: AccessDenied: not authorized to perform ec2:DeleteNetworkAcl" in html
    assert '<span class="badge bad">restore-failed</span>' in html


def test_a_drill_that_changed_nothing(tmp_path: Path) -> None:
    rec = record(Scenario(unhealthy_before=True), tmp_path)
    assert rec["journal"] is None and rec["restore"] is None
    html = page(rec)
    assert "Steady state not met before the drill" in html
    assert "No journal: the drill stopped before changing anything." in html
    assert '<span class="fact-value">not needed</span>' in html
    assert "fault-window" not in html  # no fault ever went in


def test_empty_and_odd_records_still_render() -> None:
    empty = {"drill": "break-nacl", "id": "x", "observations": {}}
    html = page(empty)
    assert "No answer was recorded, so there is no timeline to draw." in html
    assert '<svg class="timeline"' not in html
    assert "The service's tasks were not sampled." in html
    assert "This drill has no verdict." in html
    odd = {
        "drill": 3,
        "observations": {
            "answers": [{"t": "soon"}, None, {"t": 1.0, "latency_ms": None, "ok": True},
                        {"t": float("nan")}, {"t": 2.0, "latency_ms": -1, "ok": False}],
            "task_samples": "no", "log_events": [{"timestamp": "x"}], "marks": {"inject": "a"},
        },
        "verdict": {"checks": [None, {"name": "x"}]},
        "journal": {"changes": [{"type": "who-knows", "a": 1}, "junk"]},
    }  # fmt: skip
    html = page(odd)
    assert count(chart_of(html), 'class="pt ') == 2
    assert "type: who-knows, a: 1" in html
    assert page() and "No drill record to show" in page()


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_every_string_from_the_record_is_escaped(tmp_path: Path) -> None:
    rec = record(Scenario(during=timeouts_every(3), replace_task_at=3.0), tmp_path)
    rec = copy.deepcopy(rec)
    obs = rec["observations"]
    rec["url"] = f"http://127.0.0.1:8080/api/products?q={HOSTILE}"
    rec["drill"] = f"break-nacl{HOSTILE}"
    rec["id"] = HOSTILE
    rec["plan"]["summary"].append(HOSTILE)
    rec["plan"]["warnings"].append(HOSTILE)
    rec["verdict"]["checks"][0]["evidence"].append(HOSTILE)
    rec["verdict"]["checks"][0]["name"] = HOSTILE
    rec["verdict"]["reason"] = HOSTILE
    rec["error"], rec["hint"] = HOSTILE, HOSTILE
    obs["log_events"][0]["message"] = f"Redis error {HOSTILE}"
    obs["log_events"][0]["stream"] = HOSTILE
    obs["answers"][3]["error"] = HOSTILE
    obs["answers"][3]["source"] = HOSTILE
    obs["notes"].append(HOSTILE)
    obs["watch_task_definition"] = HOSTILE
    for s in obs["task_samples"]:
        for t in s["stopped"] + s["tasks"]:
            t["stopped_reason"] = HOSTILE
            t["arn"] = t["arn"] + HOSTILE
        for e in s["events"]:
            e["message"] = HOSTILE
    rec["journal"]["history"].append(f"2026-12-06T22:15:30Z {HOSTILE}")
    rec["journal"]["changes"][0]["vpc_id"] = HOSTILE
    rec["restore"]["drift"] = [HOSTILE]
    html = page(rec, steps=[{"step": HOSTILE, "name": HOSTILE, "status": HOSTILE,
                             "detail": HOSTILE, "record_id": HOSTILE}])  # fmt: skip
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "onerror=alert(1)&gt;" in html
    assert count(html, re.escape(report_html.escape(HOSTILE))) >= 20


def test_nothing_secret_reaches_the_page(tmp_path: Path) -> None:
    """The record is redacted when it is made; the page redacts it once more, so a record
    written by hand (or by an earlier rexctl) cannot leak a credential into a shared report."""
    rec = record(Scenario(), tmp_path)
    rec["url"] = "https://bob:hunter2-password@api.example.com/api/products?token=abc123secret"
    rec["observations"]["log_events"][0]["message"] = (
        "Redis error: WRONGPASS for redis://:s3cretpassw0rd@cache:6379 key AKIAIOSFODNN7EXAMPLE"
    )
    rec["journal"]["aws"]["profile"] = "ops"
    html = page(rec)
    for secret in ("hunter2-password", "abc123secret", "s3cretpassw0rd", "AKIAIOSFODNN7EXAMPLE"):
        assert secret not in html
    assert "https://bob:(redacted)@api.example.com/api/products?token=(redacted)" in html


def test_the_page_fetches_nothing(tmp_path: Path) -> None:
    html = page(record(Scenario(), tmp_path), record(ALWAYS_CACHE, tmp_path / "sg"))
    assert "default-src 'none'" in html  # the browser is told to fetch nothing at all
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", html, re.I)
    assert not re.search(r"\b(src|srcset)\s*=", html, re.I)
    assert not re.search(r"url\(|@import|@font-face", html, re.I)
    assert set(re.findall(r'href="([^"]*)"', html)) <= {f"#drill-{i}" for i in (1, 2)}


def test_the_page_has_dark_and_print_styles(tmp_path: Path) -> None:
    html = page(record(Scenario(), tmp_path))
    assert "@media (prefers-color-scheme:dark){:root{--bg:#0d1117;" in html
    styles = html[html.index("@media print{") :]
    assert ":root{--bg:#fff;" in styles  # paper is white, whatever the screen's scheme
    assert "section.drill{break-before:page;" in styles  # a page per drill
    assert "figure.chart,tr,.fact,.box{break-inside:avoid}" in styles


def test_a_rehearsal_page_lists_the_steps_and_links_each_drill(tmp_path: Path) -> None:
    nacl = record(Scenario(), tmp_path / "a")
    sg = record(ALWAYS_CACHE, tmp_path / "b")
    steps = [
        {"step": "setup", "name": "init", "status": "passed", "detail": "wrote rexctl.toml"},
        {"step": "15", "name": "chaos break-sg", "status": "passed", "detail": "not observed",
         "record_id": sg["id"]},
        {"step": "15", "name": "chaos break-nacl", "status": "failed", "detail": "exit 1",
         "record_id": nacl["id"]},
        {"step": "15", "name": "chaos wrong-host", "status": "failed", "detail": "crashed",
         "record_id": "not-drawn"},
    ]  # fmt: skip
    html = page(sg, nacl, steps=steps)
    assert "<h1>Rehearsal report</h1>" in html
    assert "2 of 4 steps had the outcome the guide expects." in html
    assert '<a href="#drill-1">chaos break-sg</a>' in html
    assert '<a href="#drill-2">chaos break-nacl</a>' in html
    assert "chaos wrong-host</td>" in html  # no record: no link
    assert '<section class="drill" id="drill-1">' in html and 'id="drill-2"' in html
    assert html.index('id="drill-1"') < html.index('id="drill-2"')


def test_the_changes_of_every_kind_read_as_words() -> None:
    lines = {kind: report_html.change_lines(c[0]) for kind, c in CHANGES.items()}
    assert lines["break-sg"][0].startswith(
        "Security group sg-c73cc3324d659a1b9: revoked the inbound rule sgr-d953ecf30eda16415 "
        "(tcp 6379-6379 from sg-7b72db1803a03bc52"
    )
    assert lines["break-nacl"][1].strip() == "rule 1 inbound: DENY tcp 6379 from 10.0.101.0/24"
    assert "rolled from rexpress-backend:2 to rexpress-backend:4" in lines["wrong-host"][0]
    assert lines["nacl-entry"] == [
        "Network ACL acl-0a: added rule 1 inbound: DENY tcp 6379 from 10.0.1.0/24. "
        "The restore deletes it."
    ]


def test_many_answers_drop_the_tooltips_not_the_points(tmp_path: Path) -> None:
    rec = record(Scenario(), tmp_path)
    answers = rec["observations"]["answers"]
    rec["observations"]["answers"] = [
        {**answers[i % len(answers)], "t": i * 0.01} for i in range(report_chart.MAX_TITLES + 1)
    ]
    svg = report_chart.timeline_svg(rec)
    assert count(svg, 'class="pt ') == report_chart.MAX_TITLES + 1
    assert "<title>t=" not in svg


@pytest.mark.parametrize(
    ("ms", "text"), [(0.25, "0.25 ms"), (3.0, "3 ms"), (120.0, "120 ms"), (1500.0, "1.5 s")]
)
def test_latencies_read_as_people_write_them(ms: float, text: str) -> None:
    assert report_chart.fmt_ms(ms) == text


# A watched rehearsal step (issue 13: TLS and AUTH later, a token rotated) ------------------------


def watched(status: str = "passed", failed_at: float | None = None) -> dict[str, Any]:
    answers = []
    for i in range(40):
        t = i * 0.25
        phase = "before" if t < 1 else "after" if t >= 8 else "during"
        source = "db" if 4.0 <= t < 4.5 else "cache"
        answers.append({"t": t, "phase": phase, "status": 200, "source": source,
                        "latency_ms": 300.0 if source == "db" else 2.0, "error": None,
                        "ok": True})  # fmt: skip
    if failed_at is not None:
        answers.append({"t": failed_at, "phase": "during", "status": None, "source": None,
                        "latency_ms": 5000.0, "error": "timed out", "ok": False})  # fmt: skip
    steps = [
        {"t": 1.2, "t_end": 3.0, "step": "turn in-transit encryption on", "kind": "tls-preferred"},
        {"t": 3.1, "t_end": 6.5, "step": "roll the service", "kind": "deploy"},
        {"t": 6.6, "t_end": 7.9, "step": "SET the AUTH token", "kind": "auth-set"},
    ]
    return {
        "step": "9 later", "name": "provision (TLS and AUTH later)", "status": status,
        "detail": "3 steps; the API answered 41 times meanwhile, 1 failed", "section_id": "w-0",
        "observations": {
            "started_at": "2026-01-01T00:00:00+00:00", "answers": answers, "steps": steps,
            "summary": {"answers": len(answers), "failed": int(failed_at is not None),
                        "sources": {"cache": 38, "db": 2}, "longest_without_cache_s": 0.5,
                        "cache_after": True},
        },
    }  # fmt: skip


def test_a_watched_step_is_drawn_with_its_steps_instead_of_a_fault(tmp_path: Path) -> None:
    sg = record(ALWAYS_CACHE, tmp_path)
    steps = [
        {"step": "15", "name": "chaos break-sg", "status": "passed", "detail": "",
         "record_id": sg["id"]},
        {"step": "9 later", "name": "provision (TLS and AUTH later)", "status": "passed",
         "detail": "", "section_id": "w-0"},
    ]  # fmt: skip
    html = report_html.render([sg], steps=steps, watched=[watched()])
    assert '<a href="#watch-1">provision (TLS and AUTH later)</a>' in html
    section = html[html.index('<section class="watch" id="watch-1">') :]
    assert "No answer failed, and the cache kept answering: 40 answers" in section
    assert count(section, 'class="step-mark"') == 3
    assert "band-core" not in section and "restored</text>" not in section, "no fault, no restore"
    svg = section[section.index('<svg class="timeline"') : section.index("</svg>")]
    assert count(svg, 'class="pt ') == 40
    assert "seconds since the API was first asked" in section
    assert '<span class="when">t = 3.1 to 6.5 s</span>roll the service</li>' in section
    assert "step 2: roll the service (t = 3.1 to 6.5 s)" in section  # the band's tooltip
    assert "guide step 9 later, watched" in html  # in the overview


def test_a_watched_step_with_a_failed_answer_says_so(tmp_path: Path) -> None:
    html = report_html.render([], steps=[], watched=[watched("failed", failed_at=5.0)])
    section = html[html.index('<section class="watch"') :]
    assert (
        '<div class="box bad"><p>3 steps; the API answered 41 times meanwhile, 1 failed' in section
    )
    svg = section[section.index('<svg class="timeline"') : section.index("</svg>")]
    assert count(svg, 'class="pt pt-fail"') == 1
    assert "<strong>1 failed</strong>" in section


def test_steps_that_start_together_share_a_label() -> None:
    marks = [report_chart.StepMark(t, t + 0.05, str(i), f"step {i}")
             for i, t in enumerate((1.0, 1.02, 1.04, 8.0), 1)]  # fmt: skip
    rec = {"drill": "rotate-token", "observations": watched()["observations"]}
    svg = report_chart.timeline_svg(rec, steps=marks)
    assert count(svg, 'class="step-mark"') == 4
    labels = re.findall(r'class="step-label"[^>]*>([^<]*)<', svg)
    assert labels == ["1-3", "4"]
