"""Inline SVG charts drawn in Python: no JavaScript and no CDN, so a report opens offline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from warmup.engine.nodes import REGISTRY, type_of
from warmup.report.graph import Placed

# Distinctive colours: the browser test looks for them in a screenshot.
PLANNED = "#2e86ab"
NEW_SENT = "#e4572e"
KLAVIYO = "#76b041"
HOLD = "#f3a712"
ROLLBACK = "#c0392b"
SERIES = ("#8e44ad", "#34495e", "#16a085")
GRID = "#dddddd"
TEXT = "#333333"


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    values: Sequence[float | None]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(value))) / 10 if value >= 1 else 0.01
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value


def _legend(series: Sequence[tuple[str, str]], x: float, y: float) -> str:
    parts = []
    for name, colour in series:
        parts.append(
            f'<rect x="{x:.0f}" y="{y - 10:.0f}" width="12" height="12" '
            f'fill="{colour}"/><text x="{x + 16:.0f}" y="{y:.0f}" font-size="12" '
            f'fill="{TEXT}">{escape(name)}</text>'
        )
        x += 24 + 7 * len(name)
    return "".join(parts)


def _frame(width: int, height: int, title: str, body: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    width: int = 1000,
    height: int = 320,
    percent: bool = False,
) -> str:
    """Grouped bars, one group per label; ``None`` values leave a gap."""
    left, right, top, bottom = 60, 10, 30, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_max(max((v for s in series for v in s.values if v is not None), default=0))
    parts = [_axis(left, top, plot_w, plot_h, peak, percent)]
    group = plot_w / max(len(labels), 1)
    bar = group * 0.8 / max(len(series), 1)
    for i, label in enumerate(labels):
        x0 = left + i * group + group * 0.1
        for j, s in enumerate(series):
            value = s.values[i]
            if value is None:
                continue
            h = plot_h * value / peak
            parts.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{top + plot_h - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" fill="{s.colour}">'
                f"<title>{escape(s.name)} {escape(label)}: {value:,.0f}</title></rect>"
            )
        parts.append(
            f'<text x="{left + (i + 0.5) * group:.1f}" y="{top + plot_h + 16}" '
            f'font-size="11" text-anchor="middle" fill="{TEXT}">{escape(label)}</text>'
        )
    parts.append(_legend([(s.name, s.colour) for s in series], left, height - 6))
    return _frame(width, height, title, "".join(parts))


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    lines: Sequence[tuple[str, str, float]] = (),
    width: int = 1000,
    height: int = 240,
) -> str:
    """Rates per label as lines with dots, plus horizontal threshold ``lines``
    (name, colour, value) drawn dashed."""
    left, right, top, bottom = 60, 10, 30, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in series for v in s.values if v is not None]
    peak = _nice_max(max([*values, *(v for _, _, v in lines)], default=0) * 1.15)
    parts = [_axis(left, top, plot_w, plot_h, peak, True)]
    step = plot_w / max(len(labels), 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + (i + 0.5) * step, top + plot_h - plot_h * v / peak

    for name, colour, value in lines:
        y = xy(0, value)[1]
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{colour}" stroke-width="2" stroke-dasharray="6 4">'
            f"<title>{escape(name)}: {value:.2%}</title></line>"
        )
    for s in series:
        points = [xy(i, v) for i, v in enumerate(s.values) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{s.colour}" stroke-width="3"/>'
            )
        for x, y in points:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{s.colour}"/>')
    for i, label in enumerate(labels):
        parts.append(
            f'<text x="{left + (i + 0.5) * step:.1f}" y="{top + plot_h + 16}" '
            f'font-size="11" text-anchor="middle" fill="{TEXT}">{escape(label)}</text>'
        )
    legend = [(s.name, s.colour) for s in series] + [(n, c) for n, c, _ in lines]
    parts.append(_legend(legend, left, height - 6))
    return _frame(width, height, title, "".join(parts))


def _axis(left: float, top: float, plot_w: float, plot_h: float, peak: float, percent: bool) -> str:
    parts = []
    for k in range(5):
        value = peak * k / 4
        y = top + plot_h - plot_h * k / 4
        text = f"{value:.2%}" if percent else f"{value:,.0f}"
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID}"/><text x="{left - 6}" y="{y + 4:.1f}" font-size="11" '
            f'text-anchor="end" fill="{TEXT}">{escape(text)}</text>'
        )
    return "".join(parts)


@dataclass(frozen=True)
class NodeBox:
    placed: Placed
    count: int
    detail: str


# Each node type's box colour comes from its registry entry (warmup.engine.nodes).
NODE_FILL = {name: kind.drawing.fill for name, kind in REGISTRY.items()}


def _edge_text(label: str, count: int) -> str:
    return f"{label} {count:,}" if label != "next" else f"{count:,}"


def funnel_graph(
    title: str, boxes: Sequence[NodeBox], edges: Sequence[tuple[str, str, str, int]]
) -> str:
    """The scenario graph as boxes (id, type, title, count of customers that reached the node)
    with edges labelled by branch and count."""
    box_w, box_h, gap_x, gap_y, margin = 300, 58, 60, 34, 70
    where: dict[str, tuple[float, float]] = {}
    for b in boxes:
        where[b.placed.node.id] = (
            margin + b.placed.column * (box_w + gap_x),
            margin + b.placed.row * (box_h + gap_y),
        )
    columns = max((b.placed.column for b in boxes), default=0) + 1
    rows = max((b.placed.row for b in boxes), default=0) + 1
    width = int(2 * margin + columns * box_w + (columns - 1) * gap_x)
    height = int(2 * margin + rows * box_h + (rows - 1) * gap_y)
    parts = [
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        f'<path d="M 0 0 L 10 5 L 0 10 z" fill="{TEXT}"/></marker></defs>'
    ]
    for source, target, label, count in edges:
        (x1, y1), (x2, y2) = where[source], where[target]
        sx, sy = x1 + box_w / 2, y1 + box_h
        tx, ty = x2 + box_w / 2, y2
        if label == "no":
            # Side branches leave from the box's right edge so yes and no never overlap.
            sx, sy = x1 + box_w, y1 + box_h / 2
            tx = x2 + box_w
            ty = y2 + box_h / 2
            mid = max(sx, tx) + 24
            parts.append(
                f'<path d="M {sx:.0f} {sy:.0f} L {mid:.0f} {sy:.0f} L {mid:.0f} '
                f'{ty:.0f} L {tx:.0f} {ty:.0f}" fill="none" stroke="{TEXT}" '
                'marker-end="url(#arrow)"/>'
            )
            lx, ly = mid + 4, (sy + ty) / 2
        elif ty - sy > gap_y + 1 and abs(tx - sx) < 1:
            # An edge skipping rows goes round the left, not through the boxes between.
            sx, sy, tx, ty = x1, y1 + box_h / 2, x2, y2 + box_h / 2
            mid = sx - 14
            parts.append(
                f'<path d="M {sx:.0f} {sy:.0f} L {mid:.0f} {sy:.0f} L {mid:.0f} '
                f'{ty:.0f} L {tx:.0f} {ty:.0f}" fill="none" stroke="{TEXT}" '
                'marker-end="url(#arrow)"/>'
            )
            parts.append(
                f'<text x="{mid - 3:.0f}" y="{sy + 14:.0f}" font-size="11" '
                f'text-anchor="end" fill="{TEXT}">{escape(_edge_text(label, count))}'
                "</text>"
            )
            continue
        else:
            parts.append(
                f'<line x1="{sx:.0f}" y1="{sy:.0f}" x2="{tx:.0f}" y2="{ty:.0f}" '
                f'stroke="{TEXT}" marker-end="url(#arrow)"/>'
            )
            lx, ly = (sx + tx) / 2 + 6, (sy + ty) / 2 + 4
        parts.append(
            f'<text x="{lx:.0f}" y="{ly:.0f}" font-size="11" fill="{TEXT}">'
            f"{escape(_edge_text(label, count))}</text>"
        )
    for b in boxes:
        x, y = where[b.placed.node.id]
        node = b.placed.node
        fill = type_of(node).drawing.fill
        name = node.title or node.type
        short = name if len(name) <= 44 else name[:43] + "…"
        parts.append(
            f'<g class="node" data-node="{escape(node.id)}"><rect x="{x:.0f}" y="{y:.0f}" '
            f'width="{box_w}" height="{box_h}" rx="8" fill="{fill}" stroke="{TEXT}"/>'
            f'<text x="{x + 8:.0f}" y="{y + 17:.0f}" font-size="12" font-weight="bold" '
            f'fill="{TEXT}">#{escape(node.id)} {escape(node.type)}</text>'
            f'<text x="{x + box_w - 8:.0f}" y="{y + 17:.0f}" font-size="13" '
            f'font-weight="bold" text-anchor="end" fill="{TEXT}" class="count">'
            f"{b.count:,}</text>"
            f'<text x="{x + 8:.0f}" y="{y + 34:.0f}" font-size="11" fill="{TEXT}">'
            f"{escape(short)}</text>"
            f'<text x="{x + 8:.0f}" y="{y + 50:.0f}" font-size="11" fill="#666666">'
            f"{escape(b.detail)}</text></g>"
        )
    return _frame(width + 60, height, title, "".join(parts))
