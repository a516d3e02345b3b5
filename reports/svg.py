"""Hand-written, deterministic SVG charts.

Each function takes data already aggregated (tens to a few thousand marks, never
one per row of a large table) and returns one `<svg>` string meant to be inlined
in the HTML page. Every piece of text that came from data passes through `esc`
before it is placed, in element content and in attribute values alike, which is
what allows `render` to mark these strings safe.

Determinism: no randomness, no clock, coordinates written with one decimal and
tick labels with a fixed number of decimals, so the same input gives the same
bytes. Colours of marks are presentation attributes (allowed by the report's
Content-Security-Policy, unlike `style` attributes); text, axes and grid take
their colours from CSS classes, so the charts follow the page's light or dark
theme.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

from curator.reports.palette import diverging, text_on

FONT_W = 6.6  # rough width of one character at the charts' 12px font, for layout only


def esc(value) -> str:
    """Escape text for element content and for double-quoted attribute values."""
    return html.escape(str(value), quote=True)


def short(text, limit: int = 22) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _c(v: float) -> str:
    """A coordinate: one decimal, no negative zero."""
    s = f"{v:.1f}"
    return "0.0" if s == "-0.0" else s


def fmt(v: float | None, decimals: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    s = f"{v:.{decimals}f}"
    return s[1:] if s.startswith("-") and float(s) == 0 else s


# -- scales and ticks ------------------------------------------------------------


def nice_ticks(lo: float, hi: float, target: int = 5) -> tuple[list[float], int]:
    """Round tick positions covering [lo, hi], and the decimals their labels need."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(1, target)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    k = first
    while k * step <= hi + step * 1e-9:
        ticks.append(round(k * step, 12))
        k += 1
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) + (1 if step / mag == 2.5 else 0)
    return ticks, min(decimals, 6)


def padded_range(values, pad: float = 0.05, include_zero: bool = False) -> tuple[float, float]:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if include_zero:
        vals.append(0.0)
    if not vals:
        return 0.0, 1.0
    lo, hi = min(vals), max(vals)
    if hi == lo:
        span = abs(lo) * 0.1 or 1.0
        return lo - span, hi + span
    span = hi - lo
    return lo - span * pad, hi + span * pad


class Scale:
    def __init__(self, d0: float, d1: float, r0: float, r1: float):
        self.d0, self.d1, self.r0, self.r1 = d0, d1, r0, r1

    def __call__(self, v: float) -> float:
        if self.d1 == self.d0:
            return (self.r0 + self.r1) / 2
        return self.r0 + (v - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)


# -- building blocks ----------------------------------------------------------------


def _open(width: int, height: int, aria: str, title: str | None = None) -> list[str]:
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'role="img" aria-label="{esc(aria)}">']
    out.append(f"<title>{esc(title or aria)}</title>")
    return out


def _axes(out: list[str], x: Scale, y: Scale, xt, yt, x_label: str, y_label: str, *, y_grid: bool = True,
          x_grid: bool = False) -> None:
    """Grid, axis lines, ticks with labels, and axis titles."""
    (xticks, xd), (yticks, yd) = xt, yt
    left, right = min(x.r0, x.r1), max(x.r0, x.r1)
    bottom, top = max(y.r0, y.r1), min(y.r0, y.r1)
    out.append('<g class="grid">')
    if y_grid:
        out += [f'<line x1="{_c(left)}" x2="{_c(right)}" y1="{_c(y(t))}" y2="{_c(y(t))}"/>' for t in yticks]
    if x_grid:
        out += [f'<line x1="{_c(x(t))}" x2="{_c(x(t))}" y1="{_c(top)}" y2="{_c(bottom)}"/>' for t in xticks]
    out.append("</g>")
    out.append('<g class="axis">')
    out.append(f'<line x1="{_c(left)}" x2="{_c(right)}" y1="{_c(bottom)}" y2="{_c(bottom)}"/>')
    out.append(f'<line x1="{_c(left)}" x2="{_c(left)}" y1="{_c(top)}" y2="{_c(bottom)}"/>')
    for t in xticks:
        out.append(f'<line x1="{_c(x(t))}" x2="{_c(x(t))}" y1="{_c(bottom)}" y2="{_c(bottom + 4)}"/>')
        out.append(f'<text x="{_c(x(t))}" y="{_c(bottom + 17)}" text-anchor="middle">{fmt(t, xd)}</text>')
    for t in yticks:
        out.append(f'<line x1="{_c(left - 4)}" x2="{_c(left)}" y1="{_c(y(t))}" y2="{_c(y(t))}"/>')
        out.append(f'<text x="{_c(left - 7)}" y="{_c(y(t) + 4)}" text-anchor="end">{fmt(t, yd)}</text>')
    out.append("</g>")
    out.append(f'<text class="axis-title" x="{_c((left + right) / 2)}" y="{_c(bottom + 36)}" '
               f'text-anchor="middle">{esc(x_label)}</text>')
    if y_label:
        cy = (top + bottom) / 2
        out.append(f'<text class="axis-title" transform="translate({_c(left - 44)} {_c(cy)}) rotate(-90)" '
                   f'text-anchor="middle">{esc(y_label)}</text>')


def _legend(out: list[str], entries: list[tuple], x0: float, y0: float, width: float,
            line: bool = False) -> float:
    """Swatches and names in rows from (x0, y0); returns the height used.

    entries: (name, colour, dash) or (name, colour, dash, opacity).
    """
    x, y = x0, y0
    for entry in entries:
        name, colour, dash = entry[:3]
        opacity = entry[3] if len(entry) > 3 else 1.0
        text = short(name, 24)
        gap = 28 if line else 18
        w = gap + len(text) * FONT_W + 18
        if x > x0 and x + w > x0 + width:
            x, y = x0, y + 18
        out.append(f'<g class="legend-item"><title>{esc(name)}</title>')
        if line:
            d = f' stroke-dasharray="{dash}"' if dash else ""
            d += f' stroke-opacity="{opacity:.2f}"' if opacity < 1 else ""
            out.append(f'<line x1="{_c(x)}" x2="{_c(x + 22)}" y1="{_c(y)}" y2="{_c(y)}" stroke="{colour}" '
                       f'stroke-width="2.5"{d}/>')
        else:
            out.append(f'<rect x="{_c(x + 3)}" y="{_c(y - 5)}" width="10" height="10" rx="2" fill="{colour}"/>')
        out.append(f'<text x="{_c(x + gap)}" y="{_c(y + 4)}">{esc(text)}</text></g>')
        x += w
    return y - y0 + 18


def _legend_height(entries, width: float) -> float:
    return _legend([], entries, 0, 0, width)


# -- charts ---------------------------------------------------------------------------


@dataclass
class Point:
    x: float
    y: float
    count: int = 1  # examples drawn at this spot (aggregated points)
    tip: str = ""  # tooltip text (escaped here)


@dataclass
class Series:
    name: str
    colour: str
    points: list = field(default_factory=list)
    dash: str = ""
    opacity: float = 1.0  # line charts: lines in currentColor tell runs apart by opacity and dash


def scatter(series: list[Series], *, x_label: str, y_label: str, aria: str,
            x_range: tuple[float, float] | None = None, y_range: tuple[float, float] | None = None,
            diagonal: bool = False, guides: tuple[float | None, float | None] = (None, None),
            small: bool = False, width: int = 620, height: int = 440) -> str:
    """Points coloured by series; a point standing for several examples gets a larger area.

    Larger points are drawn first so that small ones stay visible on top.
    guides: (x, y) positions of dashed reference lines, e.g. tau on both axes.
    small: many single points (a sample): smaller, lighter marks.
    """
    legend = [(s.name, s.colour, "") for s in series]
    lh = _legend_height(legend, width - 84)
    m_l, m_r, m_t, m_b = 64, 20, 14 + lh, 50
    xs = [p.x for s in series for p in s.points]
    ys = [p.y for s in series for p in s.points]
    xr = x_range or padded_range(xs)
    yr = y_range or padded_range(ys)
    x = Scale(xr[0], xr[1], m_l, width - m_r)
    y = Scale(yr[0], yr[1], height - m_b, m_t)
    out = _open(width, height, aria)
    _legend(out, legend, m_l, 12, width - m_l - m_r)
    _axes(out, x, y, nice_ticks(*xr), nice_ticks(*yr), x_label, y_label, x_grid=True)
    out.append('<g class="guides">')
    if diagonal:
        lo, hi = max(xr[0], yr[0]), min(xr[1], yr[1])
        if hi > lo:
            out.append(f'<line x1="{_c(x(lo))}" y1="{_c(y(lo))}" x2="{_c(x(hi))}" y2="{_c(y(hi))}"/>')
    gx, gy = guides
    if gx is not None and xr[0] <= gx <= xr[1]:
        out.append(f'<line x1="{_c(x(gx))}" x2="{_c(x(gx))}" y1="{_c(y(yr[0]))}" y2="{_c(y(yr[1]))}"/>')
    if gy is not None and yr[0] <= gy <= yr[1]:
        out.append(f'<line x1="{_c(x(xr[0]))}" x2="{_c(x(xr[1]))}" y1="{_c(y(gy))}" y2="{_c(y(gy))}"/>')
    out.append("</g>")
    marks = []
    for si, s in enumerate(series):
        for p in s.points:
            r = 1.8 if small else min(14.0, 2.6 * max(1, p.count) ** 0.4)
            marks.append((-r, si, p.x, p.y, r, s.colour, p.tip))
    marks.sort(key=lambda m: (m[0], m[1], m[2], m[3]))
    out.append('<g class="marks sample">' if small else '<g class="marks">')
    for _, _, px, py, r, colour, tip in marks:
        out.append(f'<circle class="pt" cx="{_c(x(px))}" cy="{_c(y(py))}" r="{r:.1f}" fill="{colour}">'
                   f"<title>{esc(tip)}</title></circle>")
    out.append("</g></svg>")
    return "".join(out)


def line_chart(series: list[Series], *, x_label: str, y_label: str, aria: str,
               x_range: tuple[float, float] | None = None, y_range: tuple[float, float] | None = None,
               width: int = 620, height: int = 380) -> str:
    """One polyline per series (points sorted by x), with a dash pattern per series and end markers."""
    legend = [(s.name, s.colour, s.dash, s.opacity) for s in series]
    lh = _legend_height(legend, width - 84)
    m_l, m_r, m_t, m_b = 64, 20, 14 + lh, 50
    xs = [p.x for s in series for p in s.points]
    ys = [p.y for s in series for p in s.points]
    xr = x_range or (min(xs, default=0.0), max(xs, default=1.0))
    yr = y_range or padded_range(ys)
    x = Scale(xr[0], xr[1], m_l, width - m_r)
    y = Scale(yr[0], yr[1], height - m_b, m_t)
    out = _open(width, height, aria)
    _legend(out, legend, m_l, 12, width - m_l - m_r, line=True)
    _axes(out, x, y, nice_ticks(*xr), nice_ticks(*yr), x_label, y_label)
    out.append('<g class="lines">')
    for s in series:
        pts = sorted((p.x, p.y) for p in s.points if p.y is not None)
        if not pts:
            continue
        d = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        d += f' stroke-opacity="{s.opacity:.2f}"' if s.opacity < 1 else ""
        coords = " ".join(f"{_c(x(px))},{_c(y(py))}" for px, py in pts)
        out.append(f'<polyline points="{coords}" fill="none" stroke="{s.colour}" stroke-width="2.2" '
                   f'stroke-linejoin="round"{d}><title>{esc(s.name)}</title></polyline>')
        lx, ly = pts[-1]
        o = f' fill-opacity="{s.opacity:.2f}"' if s.opacity < 1 else ""
        out.append(f'<circle class="end" cx="{_c(x(lx))}" cy="{_c(y(ly))}" r="3.5" fill="{s.colour}"{o}>'
                   f"<title>{esc(s.name)}: {fmt(ly, 3)} at step {fmt(lx, 0)}</title></circle>")
    out.append("</g></svg>")
    return "".join(out)


@dataclass
class Box:
    name: str
    colour: str
    n: int
    lo: float  # whisker ends
    q1: float
    median: float
    q3: float
    hi: float
    mean: float
    minimum: float
    maximum: float


def boxplot(boxes: list[Box], *, value_label: str, aria: str, x_range: tuple[float, float] | None = None,
            zero_line: bool = False, decimals: int = 3, whiskers: str = "5th-95th percentile",
            width: int = 620) -> str:
    """Horizontal box plots, one row per group: box = quartiles, bar = median, diamond = mean,
    whiskers as named, small ticks at the minimum and maximum."""
    names = [short(b.name) for b in boxes]
    m_l = int(min(190, max(80, max((len(n) for n in names), default=4) * FONT_W + 56)))
    m_r, m_t, m_b, row = 24, 12, 50, 40
    height = m_t + m_b + row * len(boxes)
    vals = [v for b in boxes for v in (b.minimum, b.maximum)]
    xr = x_range or padded_range(vals, include_zero=zero_line)
    x = Scale(xr[0], xr[1], m_l, width - m_r)
    y = Scale(0, max(1, len(boxes)), m_t, height - m_b)
    out = _open(width, height, aria)
    ticks, d = nice_ticks(*xr)
    out.append('<g class="grid">')
    out += [f'<line x1="{_c(x(t))}" x2="{_c(x(t))}" y1="{m_t}" y2="{height - m_b}"/>' for t in ticks]
    out.append("</g>")
    if zero_line and xr[0] < 0 < xr[1]:
        out.append(f'<g class="guides"><line x1="{_c(x(0))}" x2="{_c(x(0))}" y1="{m_t}" '
                   f'y2="{height - m_b}"/></g>')
    out.append('<g class="axis">')
    out.append(f'<line x1="{m_l}" x2="{width - m_r}" y1="{height - m_b}" y2="{height - m_b}"/>')
    for t in ticks:
        out.append(f'<line x1="{_c(x(t))}" x2="{_c(x(t))}" y1="{height - m_b}" y2="{height - m_b + 4}"/>')
        out.append(f'<text x="{_c(x(t))}" y="{height - m_b + 17}" text-anchor="middle">{fmt(t, d)}</text>')
    out.append("</g>")
    out.append(f'<text class="axis-title" x="{_c((m_l + width - m_r) / 2)}" y="{height - 14}" '
               f'text-anchor="middle">{esc(value_label)}</text>')
    for i, b in enumerate(boxes):
        cy = y(i + 0.5)
        tip = (f"{b.name}: n={b.n}, mean {fmt(b.mean, decimals)}, median {fmt(b.median, decimals)}, "
               f"quartiles {fmt(b.q1, decimals)} to {fmt(b.q3, decimals)}, {whiskers} {fmt(b.lo, decimals)} to "
               f"{fmt(b.hi, decimals)}, range {fmt(b.minimum, decimals)} to {fmt(b.maximum, decimals)}")
        out.append(f'<g class="box"><title>{esc(tip)}</title>')
        out.append(f'<text x="{m_l - 10}" y="{_c(cy - 1)}" text-anchor="end">{esc(names[i])}</text>')
        out.append(f'<text class="sub" x="{m_l - 10}" y="{_c(cy + 12)}" text-anchor="end">n={b.n}</text>')
        out.append(f'<line class="whisker" x1="{_c(x(b.lo))}" x2="{_c(x(b.hi))}" y1="{_c(cy)}" y2="{_c(cy)}"/>')
        for v in (b.minimum, b.maximum):
            out.append(f'<line class="whisker" x1="{_c(x(v))}" x2="{_c(x(v))}" y1="{_c(cy - 4)}" '
                       f'y2="{_c(cy + 4)}"/>')
        w = max(1.5, x(b.q3) - x(b.q1))
        out.append(f'<rect x="{_c(x(b.q1))}" y="{_c(cy - 11)}" width="{_c(w)}" height="22" rx="2" '
                   f'fill="{b.colour}" fill-opacity="0.55" stroke="{b.colour}" stroke-width="1.5"/>')
        out.append(f'<line class="median" x1="{_c(x(b.median))}" x2="{_c(x(b.median))}" y1="{_c(cy - 11)}" '
                   f'y2="{_c(cy + 11)}"/>')
        mx = x(b.mean)
        out.append(f'<path class="mean" d="M{_c(mx)} {_c(cy - 5)}L{_c(mx + 5)} {_c(cy)}L{_c(mx)} {_c(cy + 5)}'
                   f'L{_c(mx - 5)} {_c(cy)}Z"/>')
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def heatmap(rows: list[str], cols: list[str], values: dict, *, aria: str, counts: dict | None = None,
            decimals: int = 4, value_label: str = "", cell_w: int = 92, cell_h: int = 42) -> str:
    """A grid of cells coloured on a diverging scale centred on 0, each with its value written in it.

    values: {(row, col): float or None}; counts: {(row, col): int} for the tooltips.
    """
    rnames = [short(r, 16) for r in rows]
    cnames = [short(c, 12) for c in cols]
    m_l = int(min(150, max(70, max((len(n) for n in rnames), default=4) * FONT_W + 18)))
    m_t, m_r, m_b = 34, 16, 58
    width = m_l + cell_w * len(cols) + m_r
    height = m_t + cell_h * len(rows) + m_b
    finite = [abs(v) for v in values.values() if v is not None and math.isfinite(v)]
    limit = max(finite, default=1.0) or 1.0
    out = _open(width, height, aria)
    for j, c in enumerate(cnames):
        out.append(f'<text x="{_c(m_l + cell_w * (j + 0.5))}" y="{m_t - 10}" text-anchor="middle">'
                   f"<title>{esc(cols[j])}</title>{esc(c)}</text>")
    for i, r in enumerate(rows):
        y0 = m_t + cell_h * i
        out.append(f'<text x="{m_l - 8}" y="{_c(y0 + cell_h / 2 + 4)}" text-anchor="end">'
                   f"<title>{esc(r)}</title>{esc(rnames[i])}</text>")
        for j, c in enumerate(cols):
            v = values.get((r, c))
            x0 = m_l + cell_w * j
            n = (counts or {}).get((r, c))
            tip = f"{r} \u00d7 {c}: {fmt(v, decimals)}" + (f" over {n:,} pairs" if n is not None else "")
            if v is None or not math.isfinite(v):
                out.append(f'<g><title>{esc(tip)}</title><rect class="empty-cell" x="{x0}" y="{y0}" '
                           f'width="{cell_w}" height="{cell_h}"/>'
                           f'<text x="{_c(x0 + cell_w / 2)}" y="{_c(y0 + cell_h / 2 + 4)}" '
                           f'text-anchor="middle">n/a</text></g>')
                continue
            fill = diverging(v, limit)
            on = "on-light" if text_on(fill) == "#111111" else "on-dark"
            out.append(f'<g><title>{esc(tip)}</title><rect class="cellbox" x="{x0}" y="{y0}" width="{cell_w}" '
                       f'height="{cell_h}" fill="{fill}"/>'
                       f'<text x="{_c(x0 + cell_w / 2)}" y="{_c(y0 + cell_h / 2 + 4)}" text-anchor="middle" '
                       f'class="{on}">{fmt(v, decimals)}</text></g>')
    # colour key: nine discrete steps from -limit to +limit
    ky = m_t + cell_h * len(rows) + 18
    kw = 24
    kx = m_l
    for k in range(9):
        v = limit * (k - 4) / 4
        out.append(f'<rect x="{kx + k * kw}" y="{ky}" width="{kw}" height="10" fill="{diverging(v, limit)}"/>')
    out.append(f'<text class="sub" x="{kx}" y="{ky + 24}" text-anchor="start">{fmt(-limit, decimals)}</text>')
    out.append(f'<text class="sub" x="{kx + 4.5 * kw}" y="{ky + 24}" text-anchor="middle">0</text>')
    out.append(f'<text class="sub" x="{kx + 9 * kw}" y="{ky + 24}" text-anchor="end">{fmt(limit, decimals)}</text>')
    if value_label:
        out.append(f'<text class="sub" x="{kx + 9 * kw + 12}" y="{ky + 9}">{esc(value_label)}</text>')
    out.append("</svg>")
    return "".join(out)


@dataclass
class Bar:
    name: str
    colour: str
    value: float
    text: str  # written at the bar's end


def hbars(bars: list[Bar], *, value_label: str, aria: str, x_max: float | None = None, decimals: int = 0,
          width: int = 620) -> str:
    """Horizontal bars, one per row, value written at the end of each bar."""
    names = [short(b.name) for b in bars]
    m_l = int(min(190, max(80, max((len(n) for n in names), default=4) * FONT_W + 20)))
    longest = max((len(b.text) for b in bars), default=4)
    m_r, m_t, m_b, row = int(24 + longest * FONT_W), 8, 46, 30
    height = m_t + m_b + row * len(bars)
    top = x_max if x_max is not None else max((b.value for b in bars), default=1.0) or 1.0
    x = Scale(0, top, m_l, width - m_r)
    out = _open(width, height, aria)
    ticks, d = nice_ticks(0, top, 4)
    ticks = [t for t in ticks if t <= top + 1e-12]
    out.append('<g class="grid">')
    out += [f'<line x1="{_c(x(t))}" x2="{_c(x(t))}" y1="{m_t}" y2="{height - m_b}"/>' for t in ticks]
    out.append('</g><g class="axis">')
    out.append(f'<line x1="{m_l}" x2="{m_l}" y1="{m_t}" y2="{height - m_b}"/>')
    for t in ticks:
        out.append(f'<text x="{_c(x(t))}" y="{height - m_b + 16}" text-anchor="middle">{fmt(t, d)}</text>')
    out.append("</g>")
    out.append(f'<text class="axis-title" x="{_c((m_l + width - m_r) / 2)}" y="{height - 10}" '
               f'text-anchor="middle">{esc(value_label)}</text>')
    for i, b in enumerate(bars):
        y0 = m_t + row * i
        w = max(0.0, x(b.value) - m_l)
        out.append(f'<g><title>{esc(b.name)}: {esc(b.text)}</title>'
                   f'<text x="{m_l - 8}" y="{_c(y0 + row / 2 + 4)}" text-anchor="end">{esc(names[i])}</text>'
                   f'<rect x="{m_l}" y="{_c(y0 + 5)}" width="{_c(w)}" height="{row - 10}" rx="2" fill="{b.colour}"/>'
                   f'<text x="{_c(m_l + w + 6)}" y="{_c(y0 + row / 2 + 4)}">{esc(b.text)}</text></g>')
    out.append("</svg>")
    return "".join(out)


@dataclass
class StackRow:
    name: str
    colour: str  # the row's label colour, shown as a swatch beside its name
    n: int
    shares: list  # one share per category, summing to 1


def stacked_shares(rows: list[StackRow], categories: list[str], colours: list[str], *, value_label: str, aria: str,
                   legend_title: str = "", width: int = 620) -> str:
    """One 100% bar per row, split into categories (e.g. judge scores 0..5); shares of 8% or more are written in."""
    names = [short(r.name) for r in rows]
    m_l = int(min(190, max(90, max((len(n) for n in names), default=4) * FONT_W + 40)))
    legend = [(c, col, "") for c, col in zip(categories, colours)]
    title_w = len(legend_title) * FONT_W + 8 if legend_title else 0
    lh = _legend_height(legend, width - m_l - 24 - title_w)
    m_r, m_t, m_b, row = 24, 14 + lh, 46, 34
    height = m_t + m_b + row * len(rows)
    x = Scale(0, 1, m_l, width - m_r)
    out = _open(width, height, aria)
    if legend_title:
        out.append(f'<text class="sub" x="{m_l}" y="16">{esc(legend_title)}</text>')
    _legend(out, legend, m_l + title_w, 12, width - m_l - m_r - title_w)
    ticks = [0, 0.25, 0.5, 0.75, 1.0]
    out.append('<g class="axis">')
    for t in ticks:
        out.append(f'<text x="{_c(x(t))}" y="{height - m_b + 16}" text-anchor="middle">{t:.0%}</text>')
    out.append("</g>")
    out.append(f'<text class="axis-title" x="{_c((m_l + width - m_r) / 2)}" y="{height - 10}" '
               f'text-anchor="middle">{esc(value_label)}</text>')
    for i, r in enumerate(rows):
        y0 = m_t + row * i
        out.append(f'<text x="{m_l - 10}" y="{_c(y0 + row / 2)}" text-anchor="end">{esc(names[i])}</text>')
        out.append(f'<text class="sub" x="{m_l - 10}" y="{_c(y0 + row / 2 + 12)}" text-anchor="end">n={r.n:,}</text>')
        out.append(f'<rect x="{m_l - 6}" y="{_c(y0 + 5)}" width="3" height="{row - 10}" fill="{r.colour}"/>')
        acc = 0.0
        for cat, col, share in zip(categories, colours, r.shares):
            if share <= 0:
                continue
            x0, x1 = x(acc), x(acc + share)
            on = "on-light" if text_on(col) == "#111111" else "on-dark"
            tip = f"{r.name}: {share:.1%} {cat} ({round(share * r.n):,} of {r.n:,})"
            out.append(f'<g><title>{esc(tip)}</title><rect class="cellbox" x="{_c(x0)}" y="{_c(y0 + 5)}" '
                       f'width="{_c(max(0.5, x1 - x0))}" height="{row - 10}" fill="{col}"/>')
            if share >= 0.08:
                out.append(f'<text class="{on}" x="{_c((x0 + x1) / 2)}" y="{_c(y0 + row / 2 + 4)}" '
                           f'text-anchor="middle">{share:.0%}</text>')
            out.append("</g>")
            acc += share
    out.append("</svg>")
    return "".join(out)
