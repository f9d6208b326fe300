"""The monitoring page as one self-contained HTML document (inline CSS and SVG; no script, no CDN).

Every string that comes from the ledger (models, providers, users, tags, alert messages, rollout
names) goes through :func:`html.escape`: a ledger is caller data.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from html import escape

from cfgateway.costs.reports import GroupStats, money
from cfgateway.dashboard.figures import Figures, RolloutFigures
from cfgateway.dashboard.svg import histogram, line_chart, stacked_bars

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f8fafc;color:#111827}
header{background:#1e293b;color:#f8fafc;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#cbd5e1;font-size:13px}main{padding:16px 24px;max-width:1200px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:12px 16px;margin:0 0 16px}
h2{font-size:16px;margin:0 0 8px}.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px;min-width:130px}
.card .v{font-size:20px;font-weight:600}.card .k{font-size:12px;color:#6b7280}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{padding:4px 8px;border-bottom:1px solid #f1f5f9}
th{text-align:left;color:#475569;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#6b7280;font-size:12px}.advance{color:#16a34a}.hold{color:#ca8a04}.rollback{color:#dc2626}
"""


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def _num(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _cost(g: GroupStats) -> str:
    """Priced spend, and how many records had no price (never shown as a silent $0)."""
    return f"${money(g.cost)}" + (f" + {g.unpriced} unpriced" if g.unpriced else "")


def _secs(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f} s"


def _card(key: str, label: str, value: str) -> str:
    return (f'<div class="card"><div class="v" id="{key}">{escape(value)}</div>'
            f'<div class="k">{escape(label)}</div></div>')


def _cards(f: Figures) -> str:
    t = f.total
    cards = [
        _card("total-spend", "spend (USD)", f"${money(f.total_spend)}"),
        _card("total-calls", "calls", str(t.calls)),
        _card("total-tokens", "tokens", str(t.total_tokens)),
        _card("error-rate", "error rate", _pct(t.error_rate)),
        _card("fallback-rate", "fallback rate", _pct(t.fallback_rate)),
        _card("cache-hit-rate", "cache-hit rate", _pct(t.cache_hit_rate)),
        _card("unpriced", "records of unknown price", str(f.unpriced)),
        _card("shadow-records", "shadow comparisons", str(f.shadow_records)),
    ]
    return f'<div class="cards">{"".join(cards)}</div>'


def _table(head: Iterable[str], rows: Iterable[str], empty: str) -> str:
    body = "".join(rows) or f'<tr><td colspan="9" class="muted">{escape(empty)}</td></tr>'
    heads = "".join(f"<th>{escape(h)}</th>" for h in head)
    return f"<table><thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table>"


def _model_row(g: GroupStats) -> str:
    name = escape(g.key[0])
    cells = [str(g.calls), _pct(g.error_rate), str(g.input_tokens), str(g.output_tokens), _cost(g),
             _secs(g.latency_p50), _secs(g.latency_p95), _secs(g.latency_p99)]
    classes = ["calls", "errors", "in", "out", "cost", "p50", "p95", "p99"]
    tds = "".join(f'<td class="n {c}">{escape(v)}</td>' for c, v in zip(classes, cells, strict=True))
    return f'<tr data-model="{name}"><td>{name}</td>{tds}</tr>'


def _user_row(g: GroupStats) -> str:
    name = escape(g.key[0])
    return (f'<tr data-user="{name}"><td>{name}</td><td class="n calls">{g.calls}</td>'
            f'<td class="n tokens">{g.total_tokens}</td><td class="n cost">{escape(_cost(g))}</td></tr>')


def _rollout(r: RolloutFigures) -> str:
    s, c = r.state, r.current
    facts = [("stage", f"{s.percent:g} % of users"), ("status", s.status), ("samples", str(c.samples)),
             ("mean similarity", _num(c.mean_similarity, 4)), ("p5 similarity", _num(c.p5_similarity, 4)),
             (f"pairs >= {s.gates.min_similarity:g}", _pct(c.share_at_bar)), ("error rate", _pct(c.error_rate)),
             ("latency ratio", _num(c.latency_ratio, 2)), ("cost ratio", _num(c.cost_ratio, 2))]
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts)
    chart = histogram(f"similarity of {s.candidate}'s answers to {s.baseline or 'the baseline'}'s",
                      c.similarities, s.gates.min_similarity)
    named = "" if s.name == s.candidate else f"{escape(s.name)}: "
    return (f'<div class="rollout" data-rollout="{escape(s.name)}"><h3>{named}{escape(s.candidate)}'
            f"{' vs ' + escape(s.baseline) if s.baseline else ''}</h3>"
            f'<p class="verdict {escape(r.action)}"><b>{escape(r.action)}</b>: {escape(r.reason)}</p>'
            f"<table>{rows}</table>{chart}</div>")


def _alerts(f: Figures) -> str:
    rows = []
    for a in f.alerts:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(a.get("ts") or 0)))
        rows.append(f'<tr class="alert"><td>{escape(when)}</td><td>{escape(str(a.get("kind")))}</td>'
                    f'<td>{escape(str(a.get("text")))}</td></tr>')
    return _table(["time (UTC)", "kind", "message"], rows, "no alerts kept in this ledger")


def render_page(f: Figures, *, title: str = "cfgateway", refresh: int = 30) -> str:
    """The whole page (refreshes itself every ``refresh`` seconds; 0 = never)."""
    period = f"{f.days[0]} to {f.days[-1]} UTC" if f.days else ""
    now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(f.until))
    meta = f'<meta http-equiv="refresh" content="{int(refresh)}">' if refresh > 0 else ""
    daily = stacked_bars("spend per day by provider (USD)", f.days, f.spend_by_provider, f.daily_lines)
    month = line_chart("spend this month, cumulative (USD)", f.month_days, f.month_cumulative, f.monthly_lines)
    models = _table(["model (route)", "calls", "error rate", "input tokens", "output tokens", "cost", "p50",
                     "p95", "p99"], (_model_row(g) for g in f.by_model), "no calls in this period")
    users = _table(["user", "calls", "tokens", "cost"], (_user_row(g) for g in f.by_user[:50]),
                   "no calls in this period")
    rollouts = "".join(_rollout(r) for r in f.rollouts) or '<p class="muted">no rollout in this ledger</p>'
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">{meta}<title>{escape(title)} costs</title>'
        f'<link rel="icon" href="data:,"><meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<style>{CSS}</style></head><body><header><h1>{escape(title)}: spend, calls and rollouts</h1>"
        f"<p>{escape(period)} · updated {escape(now)} UTC"
        + (f" · refreshes every {int(refresh)} s" if refresh > 0 else "") + "</p></header><main>"
        f"<section>{_cards(f)}</section>"
        f'<section id="spend"><h2>Spend per day by provider</h2>{daily}'
        f'<p class="muted">Includes shadow comparisons. Dashed: budget limit (red) and alert thresholds.</p></section>'
        f'<section id="month"><h2>This month</h2>{month}</section>'
        f'<section id="models"><h2>By model: calls, tokens, cost, latency (successful calls)</h2>{models}</section>'
        f'<section id="users"><h2>By user (top 50 by cost)</h2>{users}</section>'
        f'<section id="rollouts"><h2>Rollouts</h2>{rollouts}</section>'
        f'<section id="alerts"><h2>Recent alerts</h2>{_alerts(f)}</section>'
        "</main></body></html>"
    )


__all__ = ["render_page"]
