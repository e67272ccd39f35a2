"""The report page's styles (`report_html`), inline in every page: light by default, dark when
the browser prefers it (`prefers-color-scheme`), and for paper (`@media print`: white, black
text, a page per drill, nothing cut inside a chart, a card or a table row). The chart's colours
are CSS variables too, so the SVG follows the same three. No font, image or anything else is
fetched: system fonts only.
"""

CSS = """
:root{--bg:#fff;--fg:#1f2328;--muted:#59636e;--border:#d1d9e0;--panel:#f6f8fa;
--ok:#1a7f37;--ok-bg:#dafbe1;--bad:#cf222e;--bad-bg:#ffebe9;--warn:#9a6700;--warn-bg:#fff8c5;
--link:#0969da;--cache:#0969da;--db:#c2410c;--none:#6e7781;--failpt:#cf222e;
--band:rgba(207,34,46,.10);--band-edge:rgba(207,34,46,.045);--band-text:#a40e26;
--grid:#eaeef2;--grid-minor:#f4f6f8;--frame:#d1d9e0;--running:#1a7f37;--desired:#8c959f;
--restored:#1a7f37;--log:#cf222e;--step:#8250df;--step-band:rgba(130,80,223,.07);
color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;
--border:#3d444d;--panel:#151b23;--ok:#3fb950;--ok-bg:rgba(46,160,67,.16);--bad:#f85149;
--bad-bg:rgba(248,81,73,.16);--warn:#d29922;--warn-bg:rgba(187,128,9,.18);--link:#4493f8;
--cache:#4493f8;--db:#f0883e;--none:#9198a1;--failpt:#ff7b72;--band:rgba(248,81,73,.16);
--band-edge:rgba(248,81,73,.07);--band-text:#ffa198;--grid:#262c36;--grid-minor:#1b2129;
--frame:#3d444d;--running:#3fb950;--desired:#6e7681;--restored:#3fb950;--log:#ff7b72;
--step:#ab7df8;--step-band:rgba(171,125,248,.10)}}
*{box-sizing:border-box}
html{background:var(--bg);color:var(--fg)}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,
"Noto Sans",sans-serif;background:var(--bg);color:var(--fg)}
main{max-width:1120px;margin:0 auto;padding:28px 32px 64px}
h1{font-size:28px;line-height:1.2;margin:4px 0 6px}
h2{font-size:22px;margin:0 0 4px;display:flex;align-items:center;gap:12px;flex-wrap:wrap}
h3{font-size:17px;margin:28px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--border)}
h4{font-size:14px;margin:16px 0 6px;color:var(--muted)}
a{color:var(--link)}
code,pre,.mono,.history,.when{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,
"DejaVu Sans Mono","Liberation Mono",monospace;font-size:12.5px}
code{overflow-wrap:anywhere}
pre.wrap{white-space:pre-wrap;overflow-wrap:anywhere;background:var(--panel);
border:1px solid var(--border);border-radius:6px;padding:8px 10px;margin:6px 0 0}
.kicker{margin:0;color:var(--muted);font-size:13px;letter-spacing:.04em;text-transform:uppercase}
.meta{color:var(--muted);font-size:13.5px;margin:2px 0 10px}
.empty{color:var(--muted);font-style:italic}
.page-head{margin-bottom:18px}
section.drill{margin-top:40px;padding-top:24px;border-top:3px solid var(--border)}
section.watch{margin-top:40px;padding-top:24px;border-top:3px solid var(--border)}
section.steps h2,nav.overview h2{font-size:18px}
nav.overview{margin-top:28px}
nav.overview ul{list-style:none;padding:0;margin:8px 0 0;display:flex;flex-wrap:wrap;gap:10px}
nav.overview a{display:flex;gap:8px;align-items:center;padding:8px 12px;border:1px solid
var(--border);border-radius:8px;text-decoration:none;color:var(--fg);background:var(--panel)}
nav.overview .meta{margin:0;font-size:12px}
.drill-name{font-weight:600}
.badge{display:inline-block;padding:1px 10px;border-radius:999px;font-size:13px;font-weight:600;
border:1px solid currentColor;white-space:nowrap;line-height:1.6}
h2 .badge{font-size:14px}
.badge.ok{color:var(--ok);background:var(--ok-bg)}
.badge.bad{color:var(--bad);background:var(--bad-bg)}
.badge.warn{color:var(--warn);background:var(--warn-bg)}
.badge.muted{color:var(--muted)}
.box{border:1px solid var(--border);border-left:4px solid var(--muted);border-radius:6px;
padding:6px 14px;margin:12px 0;background:var(--panel)}
.box p{margin:6px 0}
.box.ok{border-left-color:var(--ok)}.box.bad{border-left-color:var(--bad);background:var(--bad-bg)}
.box.warn{border-left-color:var(--warn);background:var(--warn-bg)}
.suggestion{font-weight:600}
.facts{display:grid;grid-template-columns:repeat(auto-fit,minmax(128px,1fr));gap:10px;
margin:16px 0}
.fact{border:1px solid var(--border);border-radius:8px;padding:8px 12px;background:var(--panel);
display:flex;flex-direction:column;min-width:0}
.fact-label{font-size:11.5px;color:var(--muted);text-transform:uppercase;letter-spacing:.05em}
.fact-value{font-size:20px;font-weight:650;line-height:1.3}
.fact-detail{font-size:12.5px;color:var(--muted)}
.fact.ok .fact-value{color:var(--ok)}.fact.bad .fact-value{color:var(--bad)}
.fact.warn .fact-value{color:var(--warn)}
figure.chart{margin:16px 0;padding:14px 14px 10px;border:1px solid var(--border);
border-radius:10px;background:var(--bg)}
figure.chart figcaption{font-size:13px;color:var(--muted);margin-top:6px}
svg.timeline{display:block;width:100%;height:auto}
svg.timeline text{font:13px system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;
fill:var(--muted)}
svg.timeline .axis-label{fill:var(--fg);font-weight:600}
.grid{stroke:var(--grid);stroke-width:1}.grid-minor{stroke:var(--grid-minor)}
.frame{fill:none;stroke:var(--frame)}
.band-core{fill:var(--band)}.band-edge{fill:var(--band-edge)}
svg.timeline .band-label{fill:var(--band-text);font-weight:600}
.pt-cache{fill:var(--cache);stroke:var(--bg);stroke-width:.8}
.pt-db{fill:var(--db);stroke:var(--bg);stroke-width:.8}
.pt-none{fill:none;stroke:var(--none);stroke-width:1.6}
.pt-fail{fill:none;stroke:var(--failpt);stroke-width:2.4;stroke-linecap:round}
.mark-restored line,.restored-line{stroke:var(--restored);stroke-width:1.8;stroke-dasharray:5 4}
svg.timeline .mark-restored text{fill:var(--restored);font-weight:600}
.mark-failed line{stroke:var(--bad);stroke-width:1.8;stroke-dasharray:5 4}
svg.timeline .mark-failed text{fill:var(--bad);font-weight:600}
.mark-cache-again circle{fill:none;stroke:var(--cache);stroke-width:1.8}
svg.timeline .mark-cache-again text{fill:var(--cache);font-weight:600}
svg.timeline g text{paint-order:stroke;stroke:var(--bg);stroke-width:4px;stroke-linejoin:round}
.log-tick{fill:var(--log)}
.step-band{fill:var(--step-band)}.step-line{stroke:var(--step);stroke-width:1.4}
svg.timeline .step-label{fill:var(--step);font-weight:600}
ol.watch-steps li{margin:3px 0}
.running{fill:none;stroke:var(--running);stroke-width:2.2}
.desired{fill:none;stroke:var(--desired);stroke-width:1.5;stroke-dasharray:4 3}
.task-stop{fill:var(--bad)}
ul.legend{list-style:none;display:flex;flex-wrap:wrap;gap:4px 18px;padding:0;margin:8px 0 0;
font-size:13px}
ul.legend li{display:flex;align-items:center;gap:6px}
svg.swatch{width:16px;height:16px;overflow:visible}
table{width:100%;border-collapse:collapse;font-size:14px;margin:6px 0}
th{text-align:left;font-size:12px;font-weight:600;color:var(--muted);text-transform:uppercase;white-space:nowrap;
letter-spacing:.04em;border-bottom:2px solid var(--border);padding:6px 10px}
td{border-bottom:1px solid var(--border);padding:7px 10px;vertical-align:top;overflow-wrap:anywhere}
tr.bad td:first-child{box-shadow:inset 3px 0 var(--bad)}
tr.warn td:first-child{box-shadow:inset 3px 0 var(--warn)}
td.check{font-weight:600;white-space:nowrap}
td.nowrap{white-space:nowrap}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.msg{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;
font-size:12.5px}
ul.evidence{margin:0;padding-left:18px}ul.evidence li{margin:1px 0}
ul.events,ol.history{padding-left:22px;margin:6px 0}
ul.events li,ol.history li{margin:2px 0}
.when{color:var(--muted);margin-right:6px}
ul.plan li,ul.changes li{margin:3px 0}
@media (max-width:700px){main{padding:16px}td,th{padding:6px}h1{font-size:22px}}
@media print{
:root{--bg:#fff;--fg:#000;--muted:#444;--border:#bbb;--panel:#fff;--ok:#116329;--ok-bg:#fff;
--bad:#a40e26;--bad-bg:#fff;--warn:#7d4e00;--warn-bg:#fff;--link:#000;--cache:#0550ae;
--db:#b34100;--none:#555;--failpt:#a40e26;--band:rgba(207,34,46,.12);
--band-edge:rgba(207,34,46,.05);--band-text:#a40e26;--grid:#ddd;--grid-minor:#eee;
--frame:#999;--running:#116329;--desired:#777;--restored:#116329;--log:#a40e26;
--step:#6639ba;--step-band:rgba(102,57,186,.07)}
@page{margin:14mm}
html,body{background:#fff;color:#000}
body{font-size:10.5pt}
main{max-width:none;padding:0}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
nav.overview{display:none}
section.drill{break-before:page;border-top:none;margin-top:0;padding-top:0}
section.watch{break-before:page;border-top:none;margin-top:0;padding-top:0}
section.drill:first-of-type{break-before:auto}
h2,h3,h4{break-after:avoid}
figure.chart,tr,.fact,.box{break-inside:avoid}
a{color:inherit;text-decoration:none}
}
"""
