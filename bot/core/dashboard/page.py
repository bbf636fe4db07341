"""The dashboard's HTML: the charts' containers and their data (for `dashboard.js` and the
vendored uPlot), and the same numbers as tables, readable without JavaScript."""
from __future__ import annotations

import json
from html import escape

from bot.core.dashboard.data import GROUPS, WINDOWS, UsageView

CHARTS = (
    ("requests", "Requests", "calls"),
    ("cost", "Cost", "USD"),
    ("savings", "Cache savings", "USD"),
    ("latency_ms", "Latency (mean)", "ms"),
)

_HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="/dashboard/static/uPlot.min.css">
<link rel="stylesheet" href="/dashboard/static/dashboard.css">
</head><body>
"""


def login(message: str = "", *, next_query: str = "") -> str:
    """The token form (the dashboard opens with the HTTP API's token)."""
    note = f'<p class="error" role="alert">{escape(message)}</p>' if message else ""
    return _HEAD.format(title="aibot dashboard: sign in") + f"""<main class="login">
<h1>aibot usage dashboard</h1>
{note}
<form method="post" action="/dashboard/login">
<input type="hidden" name="next" value="{escape(next_query[:200])}">
<label for="token">API token (<code>AIBOT_API_TOKEN</code>)</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Open the dashboard</button>
</form></main></body></html>"""


def off() -> str:
    return _HEAD.format(title="aibot dashboard: off") + """<main class="login"><h1>aibot usage dashboard</h1>
<p>The dashboard is off: set <code>AIBOT_API_TOKEN</code> to enable it (it opens with that token).</p>
</main></body></html>"""


def dashboard(view: UsageView) -> str:
    parts = [_HEAD.format(title="aibot usage dashboard"), "<main>", "<h1>aibot usage dashboard</h1>", _nav(view)]
    if not view.groups:
        parts.append(f"<p class=\"empty\">No model calls recorded in the last {escape(view.window)}.</p>")
    else:
        parts.append('<section id="charts" class="charts">')
        for key, title, unit in CHARTS:
            parts.append(f'<figure class="chart" id="chart-{key}" data-metric="{key}" data-unit="{unit}">'
                         f"<figcaption>{escape(title)} per {escape(view.by)} ({unit}, per {view.bucket})</figcaption>"
                         "</figure>")
        parts.append("</section>")
        parts.append(_totals(view))
        parts.append(_series(view))
    data = json.dumps(view.as_json(), separators=(",", ":")).replace("</", "<\\/")
    parts.append(f'<script type="application/json" id="usage-data">{data}</script>')
    parts.append('<script src="/dashboard/static/uPlot.iife.min.js"></script>')
    parts.append('<script src="/dashboard/static/dashboard.js"></script>')
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _nav(view: UsageView) -> str:
    def link(label: str, by: str, window: str, current: bool) -> str:
        attr = ' aria-current="page"' if current else ""
        return f'<a href="/dashboard?by={by}&amp;window={window}"{attr}>{escape(label)}</a>'

    groups = " ".join(link(g, g, view.window, g == view.by) for g in GROUPS)
    windows = " ".join(link(w, view.by, w, w == view.window) for w in WINDOWS)
    return (f'<nav><span>per {groups}</span> <span>last {windows}</span>'
            '<form method="post" action="/dashboard/logout"><button type="submit">sign out</button></form></nav>')


def _totals(view: UsageView) -> str:
    rows = []
    for g in view.groups:
        t = view.totals(g)
        rows.append(f"<tr><th scope=\"row\">{escape(g)}</th><td>{t.requests}</td><td>{t.errors}</td>"
                    f"<td>{t.cache_hits}</td><td>{t.cost:.4f}</td><td>{t.savings:.4f}</td>"
                    f"<td>{t.latency_ms:.0f}</td><td>{t.p95_ms:.0f}</td></tr>")
    return (f'<h2>Totals, last {escape(view.window)}</h2><table id="totals"><thead><tr>'
            f"<th scope=\"col\">{escape(view.by)}</th><th scope=\"col\">requests</th><th scope=\"col\">errors</th>"
            "<th scope=\"col\">cache hits</th><th scope=\"col\">cost $</th><th scope=\"col\">saved $</th>"
            "<th scope=\"col\">mean ms</th><th scope=\"col\">p95 ms</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _series(view: UsageView) -> str:
    """Per bucket and group: the charts' numbers as a table (only the non-empty buckets)."""
    rows = []
    for t in view.times:
        for g in view.groups:
            c = view.cell(t, g)
            if c is None:
                continue
            rows.append(f"<tr><td>{t:%Y-%m-%d %H:%M}</td><td>{escape(g)}</td><td>{c.requests}</td>"
                        f"<td>{c.cost:.4f}</td><td>{c.savings:.4f}</td><td>{c.latency_ms:.0f}</td></tr>")
    return (f'<details open><summary>Over time (per {view.bucket}, UTC)</summary><table id="series"><thead><tr>'
            f"<th scope=\"col\">{view.bucket} (UTC)</th><th scope=\"col\">{escape(view.by)}</th>"
            "<th scope=\"col\">requests</th><th scope=\"col\">cost $</th><th scope=\"col\">saved $</th>"
            "<th scope=\"col\">mean ms</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></details>")
