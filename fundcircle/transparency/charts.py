"""Server-rendered SVG charts (no JavaScript): a horizontal bar chart of per-proposal scores.

Accessibility: the SVG has ``role="img"`` and is labelled by its own ``<title>`` and ``<desc>``
(``aria-labelledby``); every bar also carries a ``<title>`` with its value, and the page shows the
same figures in a table, so no information lives only in the picture. Colour is never the only
signal: funded bars are solid, the others hatched, and the label says "funded".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from markupsafe import Markup, escape

# Layout in SVG user units; the SVG scales to the container width (viewBox, width 100%).
WIDTH = 640
LABEL_WIDTH = 230
VALUE_WIDTH = 130
BAR_HEIGHT = 22
GAP = 12
TOP = 8
LABEL_CHARS = 28
FUNDED_FILL = "#1f5f8b"  # the site's brand colour; 7.3:1 against white
OTHER_FILL = "#8a94a6"


@dataclass(frozen=True)
class Bar:
    label: str
    #: exact value (int or Fraction); drawn to scale, printed with ``value_text``
    value: int | Fraction
    value_text: str
    is_highlighted: bool = False


def _shorten(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def bar_chart(bars: Sequence[Bar], *, chart_id: str, title: str, description: str) -> Markup:
    """An accessible horizontal bar chart as inline SVG markup (escaped; safe to embed).

    Negative values (e.g. quadratic votes against) are drawn as zero-length bars; their value is
    still printed. An empty list gives a chart that says so.
    """
    count = max(len(bars), 1)
    height = TOP * 2 + count * BAR_HEIGHT + (count - 1) * GAP
    peak = max((Fraction(b.value) for b in bars), default=Fraction(0))
    track = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'aria-labelledby="{escape(title_id)} {escape(desc_id)}">',
        f'<title id="{escape(title_id)}">{escape(title)}</title>',
        f'<desc id="{escape(desc_id)}">{escape(description)}</desc>',
        '<defs><pattern id="' + escape(chart_id) + '-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#e6e9ef"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="{OTHER_FILL}" stroke-width="3"/></pattern></defs>',
    ]
    if not bars:
        parts.append(f'<text x="0" y="{TOP + 16}" font-size="14" fill="#1d2433">No proposals to show.</text>')
    for index, bar in enumerate(bars):
        y = TOP + index * (BAR_HEIGHT + GAP)
        value = Fraction(bar.value)
        length = 0 if peak <= 0 or value <= 0 else max(2, round(track * value / peak))
        fill = FUNDED_FILL if bar.is_highlighted else f"url(#{escape(chart_id)}-hatch)"
        label = _shorten(bar.label)
        value_text = bar.value_text + (" · funded" if bar.is_highlighted else "")
        parts.append(
            f'<g><title>{escape(bar.label)}: {escape(bar.value_text)}'
            f'{" — funded" if bar.is_highlighted else ""}</title>'
            f'<text x="0" y="{y + 15}" font-size="13" fill="#1d2433">{escape(label)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length}" height="{BAR_HEIGHT}" rx="2" fill="{fill}" '
            f'stroke="{FUNDED_FILL if bar.is_highlighted else OTHER_FILL}" stroke-width="1"/>'
            f'<text x="{LABEL_WIDTH + length + 6}" y="{y + 15}" font-size="13" fill="#1d2433">'
            f'{escape(value_text)}</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
