"""A drill's timeline as inline SVG, drawn by hand (no library, no script, nothing fetched).

Two panels share the time axis (seconds since the drill started):

- latency: every answer of the API as a point, on a log scale (a database answer takes hundreds
  of milliseconds, a cache answer a few), its shape and colour telling where it came from
  (cache: circle, database: diamond, no source: ring) and a failed answer as a cross; the fault
  window shaded (lighter while the fault goes in and while it is undone), the restore as a line,
  the first cache answer after it ringed, and each "Redis error" log event as a tick on the axis;
- tasks: the service's running count as a step line against the desired count (dashed), a
  triangle where a task stopped.

Where the fault was comes from the record's `observations.marks` (the t of inject, injected,
restore, restored); a record written before rexctl kept them is drawn from the answers' phases
(`Turns.exact` is False and the caption says so). The same chart draws a watched rehearsal step
(TLS and AUTH turned on, a token rotated: `report_watch`) with no fault window and, instead, its
steps: each a numbered band from when it started to when it ended (`StepMark`). Colours are
CSS variables of the page (`report_html`), so the chart follows its light, dark and print styles.
Every text that comes from the record is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

WIDTH, HEIGHT = 960, 372
LEFT, RIGHT = 74, 24
LAT_TOP, LAT_BOTTOM = 26, 252  # the latency panel
TASK_TOP, TASK_BOTTOM = 284, 324  # the tasks strip
MAX_TITLES = 2000  # above this many answers, points carry no tooltip (the page stays light)


@dataclass(frozen=True)
class Turns:
    """When the fault went in and came out, in seconds since the drill started."""

    inject: float | None = None
    injected: float | None = None
    restore: float | None = None
    restored: float | None = None
    exact: bool = True  # False: guessed from the answers' phases (a record without marks)

    @property
    def start(self) -> float | None:
        return self.inject if self.inject is not None else self.injected

    @property
    def end(self) -> float | None:
        return self.restored if self.restored is not None else self.restore


@dataclass(frozen=True)
class StepMark:
    """One step of a watched rehearsal step (not a fault): drawn from `t` to `t_end`."""

    t: float
    t_end: float
    label: str  # short: the step's number
    title: str  # the step itself, for the tooltip


def number(value: Any) -> float | None:
    """A finite number from the record, or None (a record is data from outside: never trusted)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def answers_of(obs: dict[str, Any]) -> list[dict[str, Any]]:
    """The answers that can be drawn (a time and a latency), in time order."""
    good = [a for a in as_list(obs.get("answers")) if number(as_dict(a).get("t")) is not None]
    return sorted(good, key=lambda a: float(a["t"]))


def samples_of(obs: dict[str, Any]) -> list[dict[str, Any]]:
    """The task samples that have a time, in time order."""
    raw = map(as_dict, as_list(obs.get("task_samples")))
    found = [s for s in raw if number(s.get("t")) is not None]
    return sorted(found, key=lambda s: float(s["t"]))


def turns_of(obs: dict[str, Any]) -> Turns:
    marks = as_dict(obs.get("marks"))
    inject, injected, restore, restored = (
        number(marks.get(k)) for k in ("inject", "injected", "restore", "restored")
    )
    if any(v is not None for v in (inject, injected, restore, restored)):
        return Turns(inject, injected, restore, restored)
    answers = answers_of(obs)
    during = [float(a["t"]) for a in answers if a.get("phase") == "during"]
    after = [float(a["t"]) for a in answers if a.get("phase") == "after"]
    if not during:
        return Turns(exact=False)
    restored = after[0] if after else during[-1]
    return Turns(during[0], during[0], during[-1], restored, exact=False)


def first_cache_after(obs: dict[str, Any]) -> dict[str, Any] | None:
    """The first answer from the cache after the restore (step 6 of the drill course)."""
    return next(
        (
            a
            for a in answers_of(obs)
            if a.get("phase") == "after" and a.get("ok") and a.get("source") == "cache"
        ),
        None,
    )


def start_epoch(obs: dict[str, Any]) -> float | None:
    """The wall-clock time of t = 0 (seconds since the epoch), when the record has it."""
    text = obs.get("started_at")
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def log_times(obs: dict[str, Any]) -> list[tuple[float, dict[str, Any]]]:
    """Each "Redis error" log event with its t, when the record says when t = 0 was."""
    epoch = start_epoch(obs)
    if epoch is None:
        return []
    out = []
    for e in map(as_dict, as_list(obs.get("log_events"))):
        ts = number(e.get("timestamp"))
        if ts is not None:
            out.append((round(ts / 1000 - epoch, 3), e))
    return out


# --- scales -------------------------------------------------------------------------------------


def nice_step(span: float, target: int = 10) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about `target` ticks over `span`."""
    raw = max(span, 1e-9) / target
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def fmt_seconds(value: float) -> str:
    return f"{value:g}"


def fmt_ms(value: float) -> str:
    """A latency for people: 0.5 ms, 3 ms, 120 ms, 1.5 s."""
    if value >= 1000:
        return f"{value / 1000:.3g} s"
    if value >= 10:
        return f"{value:.0f} ms"
    return f"{value:.2g} ms"


@dataclass(frozen=True)
class _Scales:
    x_max: float
    lo: float  # the latency axis, decades
    hi: float

    def x(self, t: float) -> float:
        return float(LEFT + (WIDTH - LEFT - RIGHT) * min(max(t, 0.0), self.x_max) / self.x_max)

    def y(self, ms: float) -> float:
        v = min(max(ms, self.lo), self.hi)
        frac = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        return float(LAT_BOTTOM - (LAT_BOTTOM - LAT_TOP) * frac)


def _scales(
    answers: Sequence[dict[str, Any]],
    turns: Turns,
    logs: Sequence[float],
    steps: Sequence[StepMark] = (),
) -> _Scales:
    times = [float(a["t"]) for a in answers]
    times += [t for t in (turns.inject, turns.injected, turns.restore, turns.restored) if t]
    times += [m.t_end for m in steps]
    latest = max([*times, *(t for t in logs if t <= max(times, default=0) + 5), 1.0])
    x_max = math.ceil(latest / nice_step(latest)) * nice_step(latest)
    lat = [v for a in answers if (v := number(a.get("latency_ms"))) is not None and v > 0]
    lo = 10 ** math.floor(math.log10(min(lat))) if lat else 1.0
    hi = 10 ** math.ceil(math.log10(max(lat))) if lat else 1000.0
    if hi <= lo:
        hi = lo * 10
    return _Scales(x_max, lo, hi)


# --- drawing ------------------------------------------------------------------------------------


def _f(value: float) -> str:
    return f"{value:.1f}"


def glyph(kind: str, x: float, y: float, title: str = "") -> str:
    """One answer's mark: `cache`, `db`, `none` (no source given) or `fail`."""
    tip = f"<title>{escape(title)}</title>" if title else ""
    if kind == "cache":
        return f'<circle class="pt pt-cache" cx="{_f(x)}" cy="{_f(y)}" r="3.6">{tip}</circle>'
    if kind == "db":
        d = f"M{_f(x)},{_f(y - 4.6)}l4.6,4.6l-4.6,4.6l-4.6,-4.6z"
        return f'<path class="pt pt-db" d="{d}">{tip}</path>'
    if kind == "fail":
        d = f"M{_f(x - 4)},{_f(y - 4)}l8,8m0,-8l-8,8"
        return f'<path class="pt pt-fail" d="{d}">{tip}</path>'
    return f'<circle class="pt pt-none" cx="{_f(x)}" cy="{_f(y)}" r="3.4">{tip}</circle>'


def kind_of(answer: dict[str, Any]) -> str:
    if not answer.get("ok"):
        return "fail"
    source = answer.get("source")
    return source if source in ("cache", "db") else "none"


def _answer_title(a: dict[str, Any]) -> str:
    what = f"HTTP {a.get('status')}" if a.get("status") is not None else "no answer"
    parts = [f"t={float(a['t']):.2f} s", str(a.get("phase") or "")]
    if a.get("ok"):
        parts.append(f"{a.get('source') or 'no source'}, {what}")
    else:
        parts.append(f"failed: {a.get('error') or what}")
    latency = number(a.get("latency_ms"))
    if latency is not None:
        parts.append(fmt_ms(latency))
    return " · ".join(p for p in parts if p)


def _band(s: _Scales, start: float, end: float, cls: str, label: str = "") -> list[str]:
    x0, x1 = s.x(start), s.x(end)
    width = max(x1 - x0, 1.5)
    out = [
        f'<rect class="{cls}" x="{_f(x0)}" y="{LAT_TOP}" width="{_f(width)}" '
        f'height="{TASK_BOTTOM - LAT_TOP}"><title>{escape(label or cls)}</title></rect>'
    ]
    if label and width > 8 * len(label):
        out.append(
            f'<text class="band-label" x="{_f(x0 + width / 2)}" y="{LAT_TOP - 8}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    return out


def _fault_window(s: _Scales, turns: Turns, last_t: float, undone: bool) -> list[str]:
    start = turns.start
    if start is None:
        return []
    core_from = turns.injected if turns.injected is not None else start
    core_to = turns.restore if turns.restore is not None else last_t
    label = "fault in place"
    if not undone:  # the restore failed: the fault is still there when the record ends
        core_to, label = s.x_max, "fault still in place"
    out = ['<g class="fault-window">']
    if core_from > start:
        out += _band(s, start, core_from, "band band-edge", "")
    out += _band(s, core_from, max(core_to, core_from), "band band-core", label)
    if undone and turns.restored is not None and turns.restore is not None:
        out += _band(s, core_to, max(turns.restored, core_to), "band band-edge", "")
    out.append("</g>")
    return out


def _hline(cls: str, y: float) -> str:
    return f'<line class="{cls}" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_f(y)}" y2="{_f(y)}"/>'


def _vline(cls: str, x: float, top: float, bottom: float) -> str:
    return f'<line class="{cls}" x1="{_f(x)}" x2="{_f(x)}" y1="{_f(top)}" y2="{_f(bottom)}"/>'


def _axes(s: _Scales, x_label: str = "seconds since the drill started") -> list[str]:
    out = ['<g class="axes">']
    # latency: a line per decade, fainter ones at 2 and 5
    decade = s.lo
    while decade <= s.hi * 1.0001:
        y = s.y(decade)
        out.append(_hline("grid", y))
        out.append(
            f'<text class="tick" x="{LEFT - 8}" y="{_f(y + 4)}" text-anchor="end">'
            f"{escape(fmt_ms(decade))}</text>"
        )
        for m in (2, 5):
            if decade * m < s.hi:
                ym = s.y(decade * m)
                out.append(_hline("grid grid-minor", ym))
        decade *= 10
    step = nice_step(s.x_max)
    n = round(s.x_max / step)
    for i in range(n + 1):
        t = i * step
        x = s.x(t)
        out.append(_vline("grid", x, LAT_TOP, LAT_BOTTOM))
        out.append(_vline("grid", x, TASK_TOP, TASK_BOTTOM))
        out.append(
            f'<text class="tick" x="{_f(x)}" y="{TASK_BOTTOM + 16}" text-anchor="middle">'
            f"{fmt_seconds(round(t, 6))}</text>"
        )
    out += [
        f'<rect class="frame" x="{LEFT}" y="{LAT_TOP}" width="{WIDTH - LEFT - RIGHT}" '
        f'height="{LAT_BOTTOM - LAT_TOP}"/>',
        f'<rect class="frame" x="{LEFT}" y="{TASK_TOP}" width="{WIDTH - LEFT - RIGHT}" '
        f'height="{TASK_BOTTOM - TASK_TOP}"/>',
        f'<text class="axis-label" x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 6}" '
        f'text-anchor="middle">{escape(x_label)}</text>',
        f'<text class="axis-label" transform="translate(16 {(LAT_TOP + LAT_BOTTOM) / 2}) '
        'rotate(-90)" text-anchor="middle">latency (log scale)</text>',
        f'<text class="axis-label" x="{LEFT - 8}" y="{(TASK_TOP + TASK_BOTTOM) / 2 + 4}" '
        'text-anchor="end">tasks</text>',
        "</g>",
    ]
    return out


def _tasks_strip(s: _Scales, obs: dict[str, Any]) -> list[str]:
    samples = samples_of(obs)
    counts = [
        (float(x["t"]), int(x.get("running") or 0), int(x.get("desired") or 0)) for x in samples
    ]
    if not counts:
        return [
            f'<text class="note" x="{LEFT + 10}" y="{(TASK_TOP + TASK_BOTTOM) / 2 + 4}">'
            "the tasks were not sampled</text>"
        ]
    top = max(max(r, d) for _, r, d in counts) or 1

    def y(n: int) -> float:
        return TASK_BOTTOM - 6 - (TASK_BOTTOM - TASK_TOP - 12) * n / top

    def steps(values: list[tuple[float, int]]) -> str:
        d = f"M{_f(s.x(values[0][0]))},{_f(y(values[0][1]))}"
        for t, n in values[1:]:
            d += f"H{_f(s.x(t))}V{_f(y(n))}"
        return d

    out = ['<g class="tasks">']
    out.append(f'<path class="desired" d="{steps([(t, d) for t, _, d in counts])}"/>')
    out.append(f'<path class="running" d="{steps([(t, r) for t, r, _ in counts])}"/>')
    out.append(
        f'<text class="tick" x="{LEFT - 8}" y="{_f(y(top) + 4)}" text-anchor="end">{top}</text>'
    )
    seen: set[str] = set()
    for i, x in enumerate(samples):
        for task in map(as_dict, as_list(x.get("stopped"))):
            arn = str(task.get("arn", ""))
            if i > 0 and arn not in seen:
                tx, ty = s.x(float(x["t"])), TASK_TOP + 8
                why = task.get("stopped_reason") or task.get("stop_code") or "stopped"
                tip = f"task {arn.rsplit('/', 1)[-1]} stopped (seen at t={x['t']:.1f} s): {why}"
                out.append(
                    f'<path class="task-stop" d="M{_f(tx - 5)},{_f(ty - 5)}h10l-5,8z">'
                    f"<title>{escape(tip)}</title></path>"
                )
            seen.add(arn)
    out.append("</g>")
    return out


STEP_LABEL_GAP = 18.0  # px: steps that start closer than this share one label ("4-5")


def _step_marks(s: _Scales, steps: Sequence[StepMark]) -> list[str]:
    """Each step as a faint band over both panels, its number on top at its start (steps that
    start within a few pixels of each other share one label, "4-5", so none hides another)."""
    out = ['<g class="steps">']
    groups: list[list[StepMark]] = []
    for m in steps:
        if groups and s.x(m.t) - s.x(groups[-1][0].t) < STEP_LABEL_GAP:
            groups[-1].append(m)
        else:
            groups.append([m])
    for group in groups:
        for m in group:
            x0, x1 = s.x(m.t), s.x(max(m.t_end, m.t))
            tip = f"step {m.label}: {m.title} (t = {m.t:.1f} to {m.t_end:.1f} s)"
            out.append(
                f'<g class="step-mark"><rect class="step-band" x="{_f(x0)}" y="{LAT_TOP}" '
                f'width="{_f(max(x1 - x0, 1.5))}" height="{TASK_BOTTOM - LAT_TOP}"/>'
                f"{_vline('step-line', x0, LAT_TOP, TASK_BOTTOM)}<title>{escape(tip)}</title></g>"
            )
        label = group[0].label if len(group) == 1 else f"{group[0].label}-{group[-1].label}"
        out.append(
            f'<text class="step-label" x="{_f(s.x(group[0].t) + 3)}" y="{LAT_TOP - 8}">'
            f"{escape(label)}</text>"
        )
    out.append("</g>")
    return out


def timeline_svg(
    record: dict[str, Any],
    *,
    title_id: str = "chart",
    steps: Sequence[StepMark] | None = None,
    x_label: str = "seconds since the drill started",
) -> str:
    """The chart of one drill record (the dict `DrillRecord.to_dict()` makes); '' when it holds
    no answer to draw. With `steps` (a watched rehearsal step, `report_watch`): those steps
    instead of a fault window, a restore and the first cache answer after it."""
    obs = as_dict(record.get("observations"))
    answers = answers_of(obs)
    if not answers:
        return ""
    watched = steps is not None
    turns = Turns() if watched else turns_of(obs)
    logs = log_times(obs)
    s = _scales(answers, turns, [t for t, _ in logs], steps or ())
    last_t = float(answers[-1]["t"])
    drill = str(record.get("drill") or "drill")
    out = [
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{escape(title_id)}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(title_id)}">{escape(drill)}: the latency of every answer over time'
        "</title>",
    ]
    restore = as_dict(record.get("restore"))
    undone = not restore or bool(restore.get("ok"))
    if watched:
        out += _step_marks(s, steps or ())
    else:
        out += _fault_window(s, turns, last_t, undone)
    out += _axes(s, x_label)
    out += _tasks_strip(s, obs)
    if turns.end is not None:
        x = s.x(turns.end)
        cls, text = ("mark-restored", "restored") if undone else ("mark-failed", "restore failed")
        when = "confirmed" if turns.exact else "about"
        if not undone:
            when = "given up"
        tx, anchor = (x - 5, "end") if x > WIDTH - RIGHT - 8 * len(text) else (x + 5, "start")
        out += [
            f'<g class="{cls}"><line x1="{_f(x)}" x2="{_f(x)}" y1="{LAT_TOP}" '
            f'y2="{TASK_BOTTOM}"/><text x="{_f(tx)}" y="{LAT_TOP + 13}" text-anchor="{anchor}">'
            f"{text}</text><title>restore {when} at t={turns.end:.2f} s</title></g>"
        ]
    for t, event in logs[:500]:
        if 0 <= t <= s.x_max:
            x = s.x(t)
            tip = f"Redis error logged at t={t:.1f} s: {str(event.get('message', ''))[:300]}"
            out.append(
                f'<path class="log-tick" d="M{_f(x)},{LAT_BOTTOM - 9}l4.5,9h-9z">'
                f"<title>{escape(tip)}</title></path>"
            )
    titles = len(answers) <= MAX_TITLES
    out.append('<g class="points">')
    for a in answers:
        latency = number(a.get("latency_ms")) or s.lo
        title = _answer_title(a) if titles else ""
        out.append(glyph(kind_of(a), s.x(float(a["t"])), s.y(latency), title))
    out.append("</g>")
    again = None if watched else first_cache_after(obs)
    if again is not None:
        x, y = s.x(float(again["t"])), s.y(number(again.get("latency_ms")) or s.lo)
        after = number(obs.get("cache_again_after"))
        label = "cache again" + (f" (+{after:.1f} s)" if after is not None else "")
        anchor, dx = ("end", -12) if x > WIDTH - RIGHT - 130 else ("start", 12)
        out.append(
            f'<g class="mark-cache-again"><circle cx="{_f(x)}" cy="{_f(y)}" r="9"/>'
            f'<text x="{_f(x + dx)}" y="{_f(y - 10)}" text-anchor="{anchor}">'
            f"{escape(label)}</text></g>"
        )
    out.append("</svg>")
    return "".join(out)


def legend_html(record: dict[str, Any], *, watched: bool = False) -> str:
    """The key to the chart, with the same glyphs (only what the chart shows, plus the basics);
    `watched`: the key to a watched rehearsal step's chart (its steps, no fault)."""
    obs = as_dict(record.get("observations"))
    kinds = {kind_of(a) for a in answers_of(obs)}
    items = [("cache", "from the cache"), ("db", "from the database")]
    if "none" in kinds:
        items.append(("none", "no source given"))
    items.append(("fail", "failed"))

    def swatch(inner: str) -> str:
        return f'<svg class="swatch" viewBox="0 0 16 16" aria-hidden="true">{inner}</svg>'

    out = ['<ul class="legend">']
    for kind, text in items:
        out.append(f"<li>{swatch(glyph(kind, 8, 8))} {escape(text)}</li>")
    shapes = [
        ('<rect class="band band-core" x="0" y="1" width="16" height="14"/>', "fault in place"),
        ('<line class="restored-line" x1="8" x2="8" y1="0" y2="16"/>', "restored"),
        ('<path class="log-tick" d="M8,4l5,10h-10z"/>', "Redis error logged"),
        ('<path class="running" d="M0,11H7V5H16"/>', "tasks running"),
        ('<path class="desired" d="M0,8H16"/>', "tasks desired"),
    ]
    if watched:
        shapes = [
            ('<rect class="step-band" x="0" y="1" width="16" height="14"/>'
             '<line class="step-line" x1="1" x2="1" y1="0" y2="16"/>', "a step, numbered"),
        ]  # fmt: skip
    for inner, text in shapes:
        out.append(f"<li>{swatch(inner)} {escape(text)}</li>")
    out.append("</ul>")
    return "".join(out)
