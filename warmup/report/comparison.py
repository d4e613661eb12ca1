"""`warmup status` and `warmup report`: the new provider against Klaviyo per engagement tier,
as text lines and an HTML table (the figures: :mod:`warmup.engagement.cohorts`)."""

from __future__ import annotations

from html import escape
from typing import Any

from warmup.engagement.cohorts import FIGURES, comparison

__all__ = ["FIGURES", "comparison", "comparison_html", "render_lines"]


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def render_lines(rows: list[dict[str, Any]]) -> list[str]:
    """`warmup status`'s text: one line per cohort."""
    if not rows:
        return []
    lines = ["compare     tier        provider  mailed  " + "  ".join(FIGURES)]
    for r in rows:
        rates = "  ".join(f"{_pct(r['rates'][n]):>{len(n)}}" for n in FIGURES)
        lines.append(f"            {r['tier']:<11} {r['provider']:<8} {r['mailed']:>7,}  {rates}")
    return lines


def comparison_html(rows: list[dict[str, Any]]) -> str:
    """`warmup report`'s table (empty without rows)."""
    if not rows:
        return ""
    head = ["tier", "provider", "mailed", *FIGURES]
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{escape(c)}</td>"
            for c in [
                r["tier"],
                r["provider"],
                f"{r['mailed']:,}",
                *(_pct(r["rates"][n]) for n in FIGURES),
            ]
        )
        + "</tr>"
        for r in rows
    )
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    return (
        "<h2>New provider against Klaviyo, by engagement tier</h2>\n"
        '<p class="note">Rates of the customer-days mailed; tiers from Klaviyo\'s events '
        "before day 1. The new provider reports no opens or clicks (–).</p>\n"
        f"<table><tr>{cells}</tr>{body}</table>\n"
    )
