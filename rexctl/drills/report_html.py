"""The drill report as one self-contained HTML page: what `--report-html` writes.

`render` turns drill records (the dicts `DrillRecord.to_dict()` makes, as `--report` writes them
and `rexctl rehearse` reads them from each drill's `--json`) into a page that needs nothing else:
the CSS is inline, the chart is inline SVG (`report_chart`), there is no script, no font, no
image to fetch, and a Content-Security-Policy forbids fetching anything, so it opens from disk
and behaves the same offline. For each drill: the outcome and the figures that matter at a
glance, the timeline chart, the verdict with its evidence, the tasks that started and stopped,
the "Redis error" log events, and what was changed and how it was undone.

It reads on a laptop screen, on paper (print styles: light colours, a page per drill) and in a
dark-mode browser (`prefers-color-scheme`). Every string from the record is escaped, and the
record is passed through `rexctl.redact` once more before anything is drawn: a report is made to
be shared.

Stdlib only (no Typer, no rich), imported only by the commands that write a page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from rexctl import __version__
from rexctl.drills import report_chart as chart
from rexctl.drills.report_css import CSS
from rexctl.redact import redact_data

OUTCOME_CLASS = {
    "passed": "ok",
    "failed": "bad",
    "error": "bad",
    "restore failed": "bad",
    "not observed": "warn",
    "interrupted": "warn",
    "warning": "warn",
    "restored": "ok",  # a journal's status
    "pending": "warn",
    "restore-failed": "bad",
}
MAX_LOG_ROWS = 50
MAX_EVENT_ROWS = 30


def render(
    records: Sequence[dict[str, Any]],
    *,
    steps: Sequence[dict[str, Any]] | None = None,
    title: str = "",
    generated_at: datetime | None = None,
    watched: Sequence[dict[str, Any]] = (),
) -> str:
    """The page for `records` (one or more drills), with the rehearsal's `steps` on top when
    given (dicts of step, name, status, detail and, for a drill, its record's `id`), and its
    `watched` steps (TLS and AUTH later, a token rotation: step dicts with `observations`) after
    the drills (`report_watch`)."""
    from rexctl.drills import report_watch

    records = [redact_data(r) for r in records if isinstance(r, dict)]
    steps = [redact_data(s) for s in steps] if steps else None
    watched = [redact_data(w) for w in watched if isinstance(w, dict)]
    when = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    if not title:
        if steps is not None:
            title = "Rehearsal report"
        elif len(records) == 1:
            r = records[0]
            title = f"{r.get('drill', 'drill')} drill: {r.get('outcome') or 'no outcome'}"
        else:
            title = f"{len(records)} drills"
    body: list[str] = [
        '<header class="page-head">',
        f'<p class="kicker">rexctl {escape(__version__)} · drill report</p>',
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">Drawn {escape(when)} from '
        f"{len(records)} drill record{'s' if len(records) != 1 else ''}.</p>",
        "</header>",
    ]
    if steps is not None:
        where = {str(r.get("id")): _anchor(i) for i, r in reversed(list(enumerate(records)))}
        where.update({str(w.get("section_id")): report_watch.anchor(i)
                      for i, w in enumerate(watched)})  # fmt: skip
        body.append(_steps_table(steps, where))
    if len(records) > 1 or steps is not None:
        body.append(_overview(records, watched))
    if not records and not watched:
        body.append('<p class="empty">No drill record to show: no drill ran to the end.</p>')
    for i, record in enumerate(records):
        body.append(_drill(record, i))
    for i, step in enumerate(watched):
        body.append(report_watch.section(step, i))
    return _page(title, "".join(body))


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f'<meta name="generator" content="rexctl {escape(__version__)}">'
        f"<title>{escape(title)} · rexctl</title>"
        f"<style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


# --- small pieces -------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _anchor(index: int) -> str:
    return f"drill-{index + 1}"


def _badge(status: Any) -> str:
    text = str(status or "no outcome")
    return f'<span class="badge {OUTCOME_CLASS.get(text, "muted")}">{escape(text)}</span>'


_list, _dict, _num = chart.as_list, chart.as_dict, chart.number


def _short(arn: Any) -> str:
    return str(arn or "").rsplit("/", 1)[-1]


def _clock(iso: Any) -> str:
    """HH:MM:SS of an ISO time (UTC as rexctl writes it), or the text as it is."""
    return _utc(iso, "%H:%M:%S")


def _stamp(iso: Any) -> str:
    return _utc(iso, "%Y-%m-%d %H:%M:%S UTC")


def _utc(iso: Any, fmt: str) -> str:
    if not isinstance(iso, str) or not iso:
        return ""
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return when.astimezone(UTC).strftime(fmt)


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def _counts(values: Sequence[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(Counter(values).items())) or "none"


def _box(kind: str, html: str) -> str:
    return f'<div class="box {kind}">{html}</div>'


def _text_block(text: Any) -> str:
    return f'<pre class="wrap">{_e(text)}</pre>'


# --- the rehearsal's steps and the overview -----------------------------------------------------


def _steps_table(steps: Sequence[dict[str, Any]], where: dict[str, str]) -> str:
    rows = []
    for s in steps:
        name = _e(s.get("name"))
        key = s.get("record_id") or s.get("section_id")
        target = where.get(str(key))
        if key and target is not None:
            name = f'<a href="#{target}">{name}</a>'
        status = str(s.get("status") or "")
        rows.append(
            f'<tr class="{OUTCOME_CLASS.get(status, "")}"><td class="nowrap">{_e(s.get("step"))}'
            f'</td><td class="nowrap">{name}</td><td>{_badge(status)}</td>'
            f"<td>{_e(s.get('detail'))}</td></tr>"
        )
    passed = sum(1 for s in steps if s.get("status") == "passed")
    return (
        '<section class="steps"><h2>The rehearsal, step by step</h2>'
        f'<p class="meta">{passed} of {len(steps)} steps had the outcome the guide expects.</p>'
        "<table><thead><tr><th>guide step</th><th>rexctl</th><th>result</th><th>detail</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _overview(records: Sequence[dict[str, Any]], watched: Sequence[dict[str, Any]] = ()) -> str:
    from rexctl.drills import report_watch

    if not records and not watched:
        return ""
    items = []
    for i, r in enumerate(records):
        items.append(
            f'<li><a href="#{_anchor(i)}"><span class="drill-name">{_e(r.get("drill"))}'
            f'</span> {_badge(r.get("outcome"))}<span class="meta">{_e(r.get("id"))}</span>'
            "</a></li>"
        )
    for i, w in enumerate(watched):
        items.append(
            f'<li><a href="#{report_watch.anchor(i)}"><span class="drill-name">'
            f'{_e(w.get("name"))}</span> {_badge(w.get("status"))}<span class="meta">guide step '
            f"{_e(w.get('step'))}, watched</span></a></li>"
        )
    heading = "Drills" if not watched else "Drills and watched steps"
    return f'<nav class="overview"><h2>{heading}</h2><ul>{"".join(items)}</ul></nav>'


# --- one drill ----------------------------------------------------------------------------------


def _drill(record: dict[str, Any], index: int) -> str:
    obs = _dict(record.get("observations"))
    verdict = _dict(record.get("verdict")) or None
    opts = _dict(record.get("options"))
    journal = _dict(record.get("journal"))
    started = _stamp(obs.get("started_at")) or _stamp(journal.get("created_at"))
    meta = [f"id <code>{_e(record.get('id'))}</code>"]
    if started:
        meta.append(f"started {escape(started)}")
    if record.get("url"):
        meta.append(f"watching <code>{_e(record.get('url'))}</code>")
    if opts:
        meta.append(
            f"observed {_e(opts.get('duration'))} s, a request every {_e(opts.get('interval'))} s,"
            f" up to {_e(opts.get('settle'))} s for the cache again"
        )
    out = [
        f'<section class="drill" id="{_anchor(index)}">',
        f"<h2>{_e(record.get('drill'))} {_badge(record.get('outcome'))}</h2>",
        f'<p class="meta">{" · ".join(meta)}</p>',
    ]
    out.append(_headline(record, verdict))
    out.append(_facts(record, obs))
    out.append(_chart(record, obs, index))
    out.append(_verdict(verdict))
    out.append(_tasks(obs))
    out.append(_logs(obs))
    out.append(_changes(record))
    notes = [str(n) for n in _list(obs.get("notes"))]
    if notes:
        out.append(
            "<h3>Notes</h3><ul class=\"notes\">" + "".join(f"<li>{_e(n)}</li>" for n in notes)
            + "</ul>"
        )  # fmt: skip
    out.append("</section>")
    return "".join(out)


def _headline(record: dict[str, Any], verdict: dict[str, Any] | None) -> str:
    """Why it ended as it did, when that needs saying: an error, or the verdict's reason."""
    out = []
    outcome = str(record.get("outcome") or "")
    if record.get("error"):
        kind = "warn" if outcome == "interrupted" else "bad"
        hint = _text_block(record["hint"]) if record.get("hint") else ""
        out.append(_box(kind, f"<p><strong>{_e(record['error'])}</strong></p>{hint}"))
    if verdict is None and not record.get("error"):
        out.append(_box("warn", "<p>This drill has no verdict.</p>"))
    if verdict is not None and (verdict.get("reason") or verdict.get("suggestion")):
        kind = OUTCOME_CLASS.get(str(verdict.get("outcome")), "warn")
        parts = [f"<p>{_e(verdict.get('reason'))}</p>"] if verdict.get("reason") else []
        if verdict.get("suggestion"):
            parts.append(f'<p class="suggestion">{_e(verdict["suggestion"])}</p>')
        out.append(_box(kind, "".join(parts)))
    return "".join(out)


def _fact(label: str, value: str, detail: str = "", kind: str = "") -> str:
    sub = f'<span class="fact-detail">{detail}</span>' if detail else ""
    return (
        f'<div class="fact {kind}"><span class="fact-label">{escape(label)}</span>'
        f'<span class="fact-value">{value}</span>{sub}</div>'
    )


def _phase_summary(answers: list[dict[str, Any]]) -> tuple[str, str, str]:
    """(value, detail, kind) for the answers of one phase."""
    if not answers:
        return "none", "", ""
    ok = [a for a in answers if a.get("ok")]
    failed = len(answers) - len(ok)
    p50 = _median([v for a in ok if (v := _num(a.get("latency_ms"))) is not None])
    parts = []
    if p50 is not None:
        parts.append("median · " + _e(_counts([str(a.get("source") or "no source") for a in ok])))
    if failed:
        parts.append(f"<strong>{failed} failed</strong>")
    value = escape(chart.fmt_ms(p50)) if p50 is not None else "no answer"
    return value, " · ".join(parts), "bad" if failed else ""


def _facts(record: dict[str, Any], obs: dict[str, Any]) -> str:
    answers = chart.answers_of(obs)
    out = ['<div class="facts">']
    failed = sum(1 for a in answers if not a.get("ok"))
    out.append(
        _fact(
            "answers",
            f"{len(answers)}",
            f"<strong>{failed} failed</strong>" if failed else "all 2xx" if answers else "",
            "bad" if failed else "",
        )
    )
    for label, phase in (("before", "before"), ("under the fault", "during")):
        value, detail, kind = _phase_summary([a for a in answers if a.get("phase") == phase])
        out.append(_fact(label, value, detail, kind))
    again = _num(obs.get("cache_again_after"))
    checked = any(
        _dict(c).get("name") == "cache used again"
        for c in _list(_dict(record.get("verdict")).get("checks"))
    )
    if again is not None:
        out.append(_fact("cache again", f"+{again:.1f} s", "after the restore", "ok"))
    elif checked:
        settle = _dict(record.get("options")).get("settle")
        out.append(_fact("cache again", "no", f"within {_e(settle)} s of the restore", "bad"))
    logs = _list(obs.get("log_events"))
    if obs.get("logs_missing_reason"):
        out.append(_fact("Redis errors logged", "unknown", "the logs cannot be read", "warn"))
    else:
        streams = len({str(_dict(e).get("stream")) for e in logs})
        detail = f"in {streams} stream{'s' if streams != 1 else ''}" if logs else ""
        out.append(_fact("Redis errors logged", str(len(logs)), detail))
    rows, _ = task_rows(obs)
    if rows:
        trouble = [r for r in rows if r["concern"]]
        value = "steady" if not trouble else f"{len(trouble)} changed"
        detail = f"{len(rows)} task{'s' if len(rows) != 1 else ''} seen"
        out.append(_fact("tasks", value, detail, "bad" if trouble else ""))
    restore = _dict(record.get("restore")) or None
    if restore is None:
        out.append(_fact("restore", "not needed", "nothing was changed"))
    elif restore.get("ok"):
        n = restore.get("attempts")
        detail = "by AWS" if n == 1 else f"by AWS, attempt {_e(n)}"
        out.append(_fact("restore", "confirmed", detail, "ok"))
    else:
        out.append(_fact("restore", "FAILED", "undo it by hand (below)", "bad"))
    out.append("</div>")
    return "".join(out)


def _chart(record: dict[str, Any], obs: dict[str, Any], index: int) -> str:
    svg = chart.timeline_svg(record, title_id=f"chart-{index}")
    if not svg:
        return '<p class="empty">No answer was recorded, so there is no timeline to draw.</p>'
    turns = chart.turns_of(obs)
    interval = _dict(record.get("options")).get("interval")
    every = f" (one every {_e(interval)} s)" if interval else ""
    caption = [f"Each point is one request to the API{every}, placed by how long it took."]
    restore = _dict(record.get("restore"))
    if turns.start is not None and restore and not restore.get("ok"):
        caption.append(
            f"The shaded band is the fault, from t = {turns.start:.1f} s: the restore gave up "
            f"at t = {_e(f'{turns.end:.1f}' if turns.end is not None else '?')} s and the fault "
            "is still in place."
        )
    elif turns.start is not None:
        span = f"t = {turns.start:.1f} s"
        if turns.end is not None:
            span += f" to {turns.end:.1f} s"
        caption.append(
            f"The shaded band is the fault ({span}), lighter while it went in and came out."
        )
    if not turns.exact:
        caption.append(
            "This record does not say exactly when the fault went in and out: the band is drawn "
            "from the answers' phases."
        )
    if _list(obs.get("log_events")) and chart.start_epoch(obs) is None:
        caption.append("The record does not say when t = 0 was, so the log events are not drawn.")
    return (
        f'<figure class="chart">{svg}{chart.legend_html(record)}'
        f"<figcaption>{' '.join(caption)}</figcaption></figure>"
    )


def _verdict(verdict: dict[str, Any] | None) -> str:
    if verdict is None:
        return ""
    rows = []
    for c in _list(verdict.get("checks")):
        c = _dict(c)
        status = str(c.get("status") or "")
        evidence = "".join(f"<li>{_e(line)}</li>" for line in _list(c.get("evidence")))
        rows.append(
            f'<tr class="{OUTCOME_CLASS.get(status, "")}"><td class="check">{_e(c.get("name"))}'
            f'</td><td>{_badge(status)}</td><td><ul class="evidence">{evidence}</ul></td></tr>'
        )
    return (
        '<h3>Verdict</h3><table class="verdict"><thead><tr><th>check</th><th>result</th>'
        f"<th>evidence</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


# --- tasks --------------------------------------------------------------------------------------


def task_rows(obs: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Each task the drill saw running, or saw stop: what happened to it, and whether that is
    what the drill checks against (a watched task that stopped, a task that was not there).
    Also how many tasks had stopped before the drill (not listed)."""
    samples = chart.samples_of(obs)
    if not samples:
        return [], 0
    watch = str(obs.get("watch_task_definition") or "")
    baseline = {str(_dict(t).get("arn")) for t in _list(obs.get("baseline_tasks"))}
    pre_stopped = {str(_dict(t).get("arn")) for t in _list(samples[0].get("stopped"))}
    first_running = {str(_dict(t).get("arn")) for t in _list(samples[0].get("tasks"))}
    last_running = {str(_dict(t).get("arn")) for t in _list(samples[-1].get("tasks"))}
    info: dict[str, dict[str, Any]] = {}
    first_seen: dict[str, tuple[float, str]] = {}
    last_seen: dict[str, float] = {}
    stopped: dict[str, float] = {}
    for s in samples:
        t = float(s["t"])
        for task in map(_dict, _list(s.get("tasks"))):
            arn = str(task.get("arn"))
            info.setdefault(arn, task)
            first_seen.setdefault(arn, (t, str(s.get("phase") or "")))
            last_seen[arn] = t
        for task in map(_dict, _list(s.get("stopped"))):
            arn = str(task.get("arn"))
            if arn in pre_stopped:
                continue
            info[arn] = task
            first_seen.setdefault(arn, (t, str(s.get("phase") or "")))
            stopped.setdefault(arn, t)
    rows = []
    for arn in sorted(info, key=lambda a: (first_seen[a][0], a)):
        task = info[arn]
        td = str(task.get("task_definition") or "")
        watched = arn in baseline
        new = arn not in first_running and not watched
        if arn in stopped:
            why = task.get("stopped_reason") or task.get("stop_code") or task.get("last_status")
            what = f"stopped, seen at t = {stopped[arn]:.1f} s: {why}"
        elif arn not in last_running:
            what = f"gone after t = {last_seen[arn]:.1f} s"
        elif arn not in first_running:
            what = f"started, first seen at t = {first_seen[arn][0]:.1f} s"
        else:
            what = "running throughout"
        gone = arn in stopped or arn not in last_running
        concern = (watched and gone) or (
            new and first_seen[arn][1] == "during" and (not watch or td == watch)
        )
        role = "watched" if watched else "new" if new else "before the drill"
        rows.append(
            {
                "task": _short(arn),
                "revision": _short(td),
                "started_at": task.get("started_at") or "",
                "role": role,
                "what": what,
                "concern": bool(concern),
            }
        )
    return rows, len(pre_stopped)


def _events(obs: dict[str, Any]) -> list[dict[str, Any]]:
    samples = [_dict(s) for s in _list(obs.get("task_samples"))]
    if not samples:
        return []
    known = {str(_dict(e).get("id")) for e in _list(samples[0].get("events"))}
    fresh: dict[str, dict[str, Any]] = {}
    for s in samples[1:]:
        for e in map(_dict, _list(s.get("events"))):
            key = str(e.get("id"))
            if key not in known:
                fresh.setdefault(key, e)
    return sorted(fresh.values(), key=lambda e: str(e.get("created_at") or ""))


def _tasks(obs: dict[str, Any]) -> str:
    rows, hidden = task_rows(obs)
    out = ["<h3>Tasks</h3>"]
    watch = obs.get("watch_task_definition")
    if watch:
        out.append(
            f'<p class="meta">Watched: the tasks of the drill\'s revision <code>{_e(_short(watch))}'
            "</code>, once its rollout was done.</p>"
        )
    if not rows:
        out.append('<p class="empty">The service\'s tasks were not sampled.</p>')
    else:
        body = "".join(
            f'<tr class="{"bad" if r["concern"] else ""}"><td><code>{_e(r["task"])}</code></td>'
            f'<td class="nowrap">{_e(r["revision"])}</td>'
            f'<td class="nowrap">{_e(_clock(r["started_at"]))}</td>'
            f'<td class="nowrap">{_e(r["role"])}</td>'
            f"<td>{_e(r['what'])}</td></tr>"
            for r in rows
        )
        out.append(
            '<table class="tasks"><thead><tr><th>task</th><th>revision</th><th>started (UTC)'
            f"</th><th>role</th><th>during the drill</th></tr></thead><tbody>{body}</tbody></table>"
        )
    if hidden:
        out.append(
            f'<p class="meta">{hidden} task{"s" if hidden != 1 else ""} that had stopped before '
            "the drill started are not listed.</p>"
        )
    events = _events(obs)
    if events:
        shown = events[:MAX_EVENT_ROWS]
        items = "".join(
            f'<li><span class="when">{_e(_clock(e.get("created_at")))}</span> '
            f"{_e(e.get('message'))}</li>"
            for e in shown
        )
        more = (
            f'<p class="meta">and {len(events) - len(shown)} more in the record.</p>'
            if len(events) > len(shown)
            else ""
        )
        out.append("<h4>Service events during the drill</h4>")
        out.append(f'<ul class="events">{items}</ul>{more}')
    return "".join(out)


# --- logs ---------------------------------------------------------------------------------------


def _logs(obs: dict[str, Any]) -> str:
    out = ["<h3>Redis errors in the logs</h3>"]
    if obs.get("logs_missing_reason"):
        out.append(_box("warn", f"<p>{_e(obs['logs_missing_reason'])}</p>"))
    if obs.get("logs_search_error"):
        why = _e(obs["logs_search_error"])
        out.append(_box("warn", f"<p>The log search did not finish: {why}</p>"))
    events = [_dict(e) for e in _list(obs.get("log_events"))]
    if not events:
        if not obs.get("logs_missing_reason"):
            out.append(
                '<p class="empty">No log event contained “Redis error” during the drill.</p>'
            )
        return "".join(out)
    epoch = chart.start_epoch(obs)
    rows = []
    for e in events[:MAX_LOG_ROWS]:
        ts = _num(e.get("timestamp"))
        when = ""
        if ts is not None:
            when = datetime.fromtimestamp(ts / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]
        t = f"{ts / 1000 - epoch:.1f}" if ts is not None and epoch is not None else ""
        rows.append(
            f'<tr><td class="nowrap">{_e(when)}</td><td class="num">{_e(t)}</td>'
            f'<td><code>{_e(e.get("stream"))}</code></td><td class="msg">{_e(e.get("message"))}'
            "</td></tr>"
        )
    more = (
        f'<p class="meta">and {len(events) - MAX_LOG_ROWS} more in the record.</p>'
        if len(events) > MAX_LOG_ROWS
        else ""
    )
    out.append(
        '<table class="logs"><thead><tr><th>time (UTC)</th><th>t (s)</th><th>stream</th>'
        f"<th>message</th></tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"
    )
    return "".join(out)


# --- what was changed, and undone ---------------------------------------------------------------


def _entry(e: dict[str, Any]) -> str:
    direction = "outbound" if e.get("egress") else "inbound"
    protocol = str(e.get("protocol"))
    proto = {"6": "tcp", "17": "udp", "-1": "all traffic"}.get(protocol, protocol)
    ports = _list(e.get("port_range")) or ([e["port"]] * 2 if e.get("port") else [])
    port = ""
    if len(ports) == 2:
        port = f" {ports[0]}" if ports[0] == ports[1] else f" {ports[0]}-{ports[1]}"
    where = e.get("cidr") or e.get("ipv6_cidr") or ""
    action = str(e.get("action", "")).upper()
    return f"rule {e.get('rule_number')} {direction}: {action} {proto}{port} from {where}"


def change_lines(change: dict[str, Any]) -> list[str]:
    """A journaled change in words (each kind of `rexctl.drills.changes`; others as key: value).
    Whether it was undone is the restore's to say, below it."""
    kind = change.get("type")
    if kind == "sg-rule":
        r = _dict(change.get("rule"))
        return [
            f"Security group {r.get('group_id')}: revoked the inbound rule "
            f"{r.get('rule_id') or ''} ({r.get('protocol')} {r.get('from_port')}-"
            f"{r.get('to_port')} from {r.get('source_group_id')}, "
            f"{r.get('description') or 'no description'}). The restore authorizes it again "
            "(AWS gives it a new rule id)."
        ]
    if kind == "nacl-clone":
        lines = [
            f"Network ACL {change.get('clone_acl_id') or '(not created yet)'}: created as a copy "
            f"of {change.get('source_acl_id')} in {change.get('vpc_id')} "
            f"({len(_list(change.get('copied')))} entries copied), with these entries added:"
        ]
        lines += [f"  {_entry(_dict(e))}" for e in _list(change.get("denied"))]
        for m in map(_dict, _list(change.get("subnets"))):
            lines.append(
                f"Subnet {m.get('subnet_id')} moved from {m.get('original_acl_id')} to the copy "
                f"(the journal last saw it on {m.get('acl_id') or '?'})."
            )
        if _list(change.get("untouched")):
            lines.append(
                "Not touched (they share the original ACL): "
                + ", ".join(map(str, _list(change.get("untouched"))))
            )
        lines.append("The restore moves the subnets back, then deletes the copy.")
        return lines
    if kind == "service-revision":
        bad = _short(change.get("bad")) or "(not registered yet)"
        return [
            f"Service {change.get('cluster')}/{change.get('service')}: rolled from "
            f"{_short(change.get('previous'))} to {bad} (container {change.get('container')}, "
            f"REDIS_HOST={change.get('bad_host')}). The restore rolls it back and deregisters "
            f"{bad}."
        ]
    if kind == "nacl-entry":
        e = _dict(change.get("entry"))
        return [f"Network ACL {e.get('acl_id')}: added {_entry(e)}. The restore deletes it."]
    return [", ".join(f"{k}: {v}" for k, v in change.items())]


def _changes(record: dict[str, Any]) -> str:
    out = ["<h3>What was changed, and undone</h3>"]
    plan = _dict(record.get("plan"))
    journal = _dict(record.get("journal")) or None
    summary = [str(x) for x in _list(plan.get("summary"))]
    if summary:
        out.append('<h4>The plan, as confirmed</h4><ul class="plan">')
        out += [f"<li>{_e(line)}</li>" for line in summary]
        out.append("</ul>")
    for w in _list(plan.get("warnings")):
        out.append(_box("warn", f"<p>{_e(w)}</p>"))
    if journal is None:
        out.append('<p class="empty">No journal: the drill stopped before changing anything.</p>')
        return "".join(out)
    changes = [_dict(c) for c in _list(journal.get("changes"))]
    if changes:
        out.append('<h4>Changes (from the journal)</h4><ul class="changes">')
        for c in changes:
            lines = change_lines(c)
            out.append(f"<li>{_e(lines[0])}")
            if len(lines) > 1:
                out.append("<ul>" + "".join(f"<li>{_e(x.strip())}</li>" for x in lines[1:]))
                out.append("</ul>")
            out.append("</li>")
        out.append("</ul>")
    restore = _dict(record.get("restore")) or None
    status = str(journal.get("status") or "")
    when = f"written {_e(_stamp(journal.get('created_at')))}"
    if journal.get("restored_at"):
        when += f", restored {_e(_stamp(journal.get('restored_at')))}"
    out.append(
        f"<p>Journal <code>{_e(journal.get('id'))}</code>: {_badge(status)} "
        f'<span class="meta">{when}</span></p>'
    )
    if restore is not None:
        if restore.get("ok"):
            attempt = _e(restore.get("attempts"))
            out.append(_box("ok", f"<p>Restored and confirmed by AWS (attempt {attempt}).</p>"))
        else:
            undo = "\n".join(map(str, _list(restore.get("manual_undo"))))
            out.append(
                _box(
                    "bad",
                    f"<p><strong>Not restored after {_e(restore.get('attempts'))} attempts."
                    "</strong> Undo it by hand:</p>"
                    + _text_block(undo or "(no command: see the journal)"),
                )
            )
        errors = _list(restore.get("errors"))
        if errors:
            out.append('<h4>Restore attempts that failed</h4><ul class="mono">')
            out += [f"<li>{_e(x)}</li>" for x in errors]
            out.append("</ul>")
        drift = _list(restore.get("drift"))
        if drift:
            out.append(
                _box(
                    "warn",
                    "<p>Restored, but the describe differs from before the drill (a change by "
                    'someone else?):</p><ul class="mono">'
                    + "".join(f"<li>{_e(x)}</li>" for x in drift)
                    + "</ul>",
                )
            )
    history = _list(journal.get("history"))
    if history:
        out.append('<h4>Journal history</h4><ol class="history">')
        for line in history:
            stamp, _, what = str(line).partition(" ")
            when = _e(_clock(stamp) or stamp)
            out.append(f'<li><span class="when">{when}</span> {_e(what)}</li>')
        out.append("</ol>")
    return "".join(out)
