"""A watched rehearsal step in the drill report: TLS and AUTH turned on for a running cache, or its
token rotated, while the API was asked every quarter second (`rexctl rehearse --enable-later`).

The step's `observations` (what `rexctl.sandbox.watch.ApiWatch` kept, in a drill's shape) are
drawn with the drills' own chart (`report_chart.timeline_svg`), the command's steps marked on it
where a drill has its fault window, then: whether any answer failed and whether the cache kept
answering, the figures behind that, and the steps with when each ran. Every string is escaped,
and the step was redacted by `report_html.render` before it gets here.
"""

from __future__ import annotations

from html import escape
from typing import Any

from rexctl.drills import report_chart as chart
from rexctl.drills import report_html as page

_dict, _list, _num = chart.as_dict, chart.as_list, chart.number


def anchor(index: int) -> str:
    return f"watch-{index + 1}"


def step_marks(obs: dict[str, Any]) -> list[chart.StepMark]:
    """The command's steps on the chart's time axis, numbered in the order they ran."""
    marks = []
    for i, raw in enumerate(map(_dict, _list(obs.get("steps"))), 1):
        t = _num(raw.get("t"))
        if t is None:
            continue
        end = _num(raw.get("t_end"))
        marks.append(chart.StepMark(t, end if end is not None else t, str(i), str(raw.get("step"))))
    return marks


def section(step: dict[str, Any], index: int) -> str:
    """One watched step: headline, figures, the chart with its steps, the steps' list."""
    obs = _dict(step.get("observations"))
    answers = chart.answers_of(obs)
    summary = _dict(obs.get("summary"))
    marks = step_marks(obs)
    name = str(step.get("name") or "watched step")
    meta = [f"guide step {page._e(step.get('step'))}"]
    if obs.get("started_at"):
        meta.append(f"t = 0 at {escape(page._stamp(obs.get('started_at')))}")
    meta.append("the API asked from a second before the command to two seconds after it ended")
    out = [
        f'<section class="watch" id="{anchor(index)}">',
        f"<h2>{page._e(name)} {page._badge(step.get('status'))}</h2>",
        f'<p class="meta">{" · ".join(meta)}</p>',
        _headline(step, answers, summary),
        _facts(answers, summary, marks),
        _chart(step, obs, marks, index),
        _steps(marks),
        "</section>",
    ]
    return "".join(out)


def _headline(step: dict[str, Any], answers: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    failed = sum(1 for a in answers if not a.get("ok"))
    longest = _num(summary.get("longest_without_cache_s"))
    if step.get("status") == "passed" and not failed:
        text = (
            f"No answer failed, and the cache kept answering: {len(answers)} answers, the "
            "longest stretch without an answer from the cache "
            f"{longest if longest is not None else '?'} s, the cache answering afterwards."
        )
        return page._box("ok", f"<p>{escape(text)}</p>")
    return page._box("bad", f"<p>{page._e(step.get('detail'))}</p>")


def _facts(
    answers: list[dict[str, Any]], summary: dict[str, Any], marks: list[chart.StepMark]
) -> str:
    failed = sum(1 for a in answers if not a.get("ok"))
    out = ['<div class="facts">']
    out.append(
        page._fact(
            "answers",
            str(len(answers)),
            f"<strong>{failed} failed</strong>" if failed else "all 2xx" if answers else "",
            "bad" if failed else "",
        )
    )
    for label, phase in (("before", "before"), ("meanwhile", "during"), ("after", "after")):
        value, detail, kind = page._phase_summary([a for a in answers if a.get("phase") == phase])
        out.append(page._fact(label, value, detail, kind))
    longest = _num(summary.get("longest_without_cache_s"))
    if longest is not None:
        out.append(page._fact("without the cache", f"{longest:.1f} s", "longest stretch"))
    after = summary.get("cache_after")
    if isinstance(after, bool):
        out.append(
            page._fact("cache afterwards", "yes" if after else "no", "", "ok" if after else "bad")
        )
    if marks:
        span = max(m.t_end for m in marks) - min(m.t for m in marks)
        out.append(page._fact("steps", str(len(marks)), f"over {span:.1f} s"))
    out.append("</div>")
    return "".join(out)


def _chart(
    step: dict[str, Any], obs: dict[str, Any], marks: list[chart.StepMark], index: int
) -> str:
    record = {"drill": step.get("name"), "observations": obs}
    svg = chart.timeline_svg(
        record, title_id=f"watch-chart-{index}", steps=marks,
        x_label="seconds since the API was first asked",
    )  # fmt: skip
    if not svg:
        return '<p class="empty">No answer was recorded, so there is no timeline to draw.</p>'
    caption = (
        "Each point is one request to the API (one every 0.25 s), placed by how long it took. "
        "Each numbered band is a step of the command, from when it started to when it ended "
        "(listed below); a cross would be a failed answer."
    )
    if not marks:
        caption += " The command did not say when its steps ran, so none is marked."
    return (
        f'<figure class="chart">{svg}{chart.legend_html(record, watched=True)}'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def _steps(marks: list[chart.StepMark]) -> str:
    if not marks:
        return ""
    items = "".join(
        f'<li><span class="when">t = {m.t:.1f} to {m.t_end:.1f} s</span>{page._e(m.title)}</li>'
        for m in marks
    )
    return f'<h3>Steps</h3><ol class="watch-steps">{items}</ol>'
