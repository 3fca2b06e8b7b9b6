"""Building blocks for the self-contained HTML reports of the reporting algorithms.

A report is one ``.html`` file a sales manager can open, mail or archive: the CSS is inline,
images are PNGs embedded as base64 data URIs and charts are inline SVG, so nothing refers to a
file or a web address. Everything that comes from user data goes through :func:`esc`.

The reports themselves are written in ``report_statistics`` and ``report_compare``, their map
images in ``report_maps``.
"""

from __future__ import annotations

import base64
import datetime
import html
import math
from collections.abc import Sequence

from qgis.core import (
    QgsMapRendererCustomPainterJob,
    QgsMapSettings,
    QgsProcessingException,
    QgsRectangle,
)
from qgis.PyQt.QtCore import QBuffer, QByteArray, QIODevice, QSize
from qgis.PyQt.QtGui import QColor, QImage, QPainter

from ..core.metrics import relative_deviation
from ..i18n import tr
from ..layers.style import territory_colour

CSS = """
body { font-family: "Segoe UI", Helvetica, Arial, sans-serif; color: #222; margin: 24px auto;
       max-width: 1100px; padding: 0 16px; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 1.6em; border-bottom: 2px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 1.05em; margin-bottom: 0.3em; }
.meta { color: #666; font-size: 0.9em; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 10px 14px; min-width: 150px; background: #fafafa; }
.card .value { font-size: 1.5em; font-weight: 600; }
.card .label { color: #666; font-size: 0.85em; }
.ok { color: #1a7f37; } .bad { color: #b42318; } .warn { color: #9a6700; }
table { border-collapse: collapse; font-size: 0.88em; margin: 8px 0 16px 0; }
th, td { border: 1px solid #ddd; padding: 4px 8px; }
th { background: #f0f0f0; text-align: left; vertical-align: bottom; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.flag td { background: #fff4f2; }
.swatch { display: inline-block; width: 11px; height: 11px; border: 1px solid #555; margin-right: 5px;
          vertical-align: -1px; }
img.map { max-width: 100%; border: 1px solid #ccc; }
ul.issues li { margin: 2px 0; }
svg text { font-family: "Segoe UI", Helvetica, Arial, sans-serif; }
"""


def esc(value) -> str:
    """Text for HTML: escaped, ``None`` as an empty string."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value, decimals: int = 1) -> str:
    """A number for people: thousands separators, fixed decimals, "–" for missing values."""
    if value is None:
        return "–"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return esc(value)
    if not math.isfinite(number):
        return "–"
    if decimals == 0 or number.is_integer():
        return f"{number:,.0f}"
    return f"{number:,.{decimals}f}"


def document(title: str, body: str) -> str:
    """A complete HTML page with the report's inline style sheet."""
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f'<h1>{esc(title)}</h1>\n<p class="meta">Territory Planner · {esc(stamp)}</p>\n'
        f"{body}\n</body>\n</html>\n"
    )


def write_document(path: str, text: str) -> None:
    """Write the report; a file that cannot be written raises a QgsProcessingException saying why."""
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        raise QgsProcessingException(tr(
            "Could not write the report “{}”: {}. Choose another file (in an existing folder you can write "
            "to), or free some disk space.").format(path, error.strerror or error)) from error


def within_tolerance(deviation: float, tolerance: float) -> bool:
    """Whether a deviation (a signed fraction of the target, as ``core.metrics.relative_deviation``
    gives it) lies within ± ``tolerance``: the rule of ``plan_figures``' within_tolerance."""
    return abs(float(deviation)) <= tolerance + 1e-9


def swatch(colour: QColor) -> str:
    return f'<span class="swatch" style="background:{colour.name()}"></span>'


def cards(items: Sequence[tuple[str, str, str]]) -> str:
    """Key figures as cards: (value, label, css class)."""
    out = ['<div class="cards">']
    for value, label, css in items:
        out.append(
            f'<div class="card"><div class="value {css}">{value}</div><div class="label">{esc(label)}</div></div>'
        )
    out.append("</div>")
    return "\n".join(out)


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    numeric: Sequence[bool] | None = None,
    flagged: Sequence[bool] | None = None,
) -> str:
    """An HTML table. ``headers`` are plain text; cells are HTML already (escape them first)."""
    numeric = list(numeric) if numeric is not None else [False] * len(headers)
    out = ["<table>", "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr>"]
    for r, row in enumerate(rows):
        css = ' class="flag"' if flagged is not None and flagged[r] else ""
        cells = "".join(f'<td class="num">{c}</td>' if numeric[i] else f"<td>{c}</td>" for i, c in enumerate(row))
        out.append(f"<tr{css}>{cells}</tr>")
    out.append("</table>")
    return "\n".join(out)


# --- images -----------------------------------------------------------------------------------


def png_data_uri(image: QImage) -> str:
    """The image as a ``data:image/png;base64,…`` URI."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return "data:image/png;base64," + base64.b64encode(bytes(data)).decode("ascii")


def image_tag(image: QImage, alt: str) -> str:
    return f'<img class="map" alt="{esc(alt)}" src="{png_data_uri(image)}">'


def render_map(
    layers: list, crs, extent: QgsRectangle, width: int = 1000, height: int = 700, transform_context=None
) -> QImage:
    """Draw ``layers`` (top first) with QGIS's renderer into an image of at most ``width`` ×
    ``height`` pixels, keeping the extent's aspect ratio. Safe off the main thread."""
    extent = QgsRectangle(extent)
    if extent.isEmpty():
        extent.grow(1.0)
    extent.scale(1.05)
    aspect = extent.width() / extent.height() if extent.height() > 0 else 1.0
    if aspect >= width / height:
        size = QSize(width, max(100, int(round(width / aspect))))
    else:
        size = QSize(max(100, int(round(height * aspect))), height)
    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setDestinationCrs(crs)
    if transform_context is not None:
        settings.setTransformContext(transform_context)
    settings.setOutputSize(size)
    settings.setOutputDpi(96)
    settings.setBackgroundColor(QColor(255, 255, 255))
    settings.setExtent(extent)
    image = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(QColor(255, 255, 255))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    job = QgsMapRendererCustomPainterJob(settings, painter)
    job.renderSynchronously()
    painter.end()
    return image


# --- charts -----------------------------------------------------------------------------------


def nice_ceiling(value: float) -> float:
    if value <= 0 or not math.isfinite(value):
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        if step * 10**exponent >= value:
            return step * 10**exponent
    return 10.0 ** (exponent + 1)


def short_text(text: str, limit: int = 18) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _chart_start(title: str, width: int, height: int, left: int) -> list[str]:
    """The opening of a chart's SVG and its title."""
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}">',
        f'<text x="{left}" y="18" font-size="14" font-weight="600">{esc(title)}</text>',
    ]


def _gridline(value: float, y, left: int, right_edge: int, high: float, colour: str = "#eee") -> list[str]:
    """A horizontal line across the plot at ``value`` (``y`` maps values to pixels) and its label."""
    return [
        f'<line x1="{left}" x2="{right_edge}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
        f'stroke="{colour}" stroke-width="1"/>',
        f'<text x="{left - 6}" y="{y(value) + 4:.1f}" font-size="11" text-anchor="end">'
        f"{esc(fmt(value, 0 if high >= 50 else 2))}</text>",
    ]


def _slanted_name(name: str, x: float, y: int) -> str:
    """A territory's name under its bar, slanted so that long names fit."""
    return (f'<text x="{x:.1f}" y="{y}" font-size="11" text-anchor="end" '
            f'transform="rotate(-55 {x:.1f} {y})">{esc(short_text(name))}</text>')


def bar_chart(
    title: str,
    names: Sequence[str],
    values: Sequence[float],
    targets: Sequence[float],
    tolerance: float,
    colours: Sequence[QColor],
) -> str:
    """An inline SVG bar chart: one bar per territory in its map colour, its target as a dark
    line and the tolerance band (target ± ``tolerance`` × target) shaded behind it. Bars
    outside the band get a red outline."""
    n = len(names)
    bar = 26 if n <= 30 else max(6, 780 // max(n, 1))
    left, top, bottom, right = 70, 30, 110, 20
    width = max(left + right + max(n, 1) * bar, 330)
    height = 260 + top + bottom
    plot_h = 260
    high = nice_ceiling(max([0.0] + [float(v) for v in values] + [float(t) * (1 + tolerance) for t in targets]))

    def y(v: float) -> float:
        return top + plot_h - plot_h * float(v) / high

    parts = _chart_start(title, width, height, left)
    for k in range(6):
        parts += _gridline(high * k / 5, y, left, width - right, high)
    for k in range(n):
        x = left + k * bar
        target = float(targets[k])
        low_t, high_t = target * (1 - tolerance), target * (1 + tolerance)
        parts.append(
            f'<rect x="{x:.1f}" y="{y(high_t):.1f}" width="{bar:.1f}" '
            f'height="{max(y(low_t) - y(high_t), 0.5):.1f}" fill="#7fbf7f" fill-opacity="0.35"/>'
        )
    for k in range(n):
        x = left + k * bar
        value = float(values[k])
        target = float(targets[k])
        outside = not within_tolerance(relative_deviation(value, target), tolerance)
        stroke = ' stroke="#b42318" stroke-width="2"' if outside else ' stroke="#444" stroke-width="0.5"'
        parts.append(
            f'<rect x="{x + bar * 0.15:.1f}" y="{y(value):.1f}" width="{bar * 0.7:.1f}" '
            f'height="{max(top + plot_h - y(value), 0):.1f}" fill="{colours[k].name()}"{stroke}>'
            f"<title>{esc(names[k])}: {esc(fmt(value))} (target {esc(fmt(target))})</title></rect>"
        )
        parts.append(
            f'<line x1="{x:.1f}" x2="{x + bar:.1f}" y1="{y(target):.1f}" y2="{y(target):.1f}" '
            'stroke="#1f3a5f" stroke-width="2"/>'
        )
        parts.append(_slanted_name(names[k], x + bar / 2, top + plot_h + 8))
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#333"/>')
    legend_y = height - 10
    parts.append(
        f'<line x1="{left}" x2="{left + 24}" y1="{legend_y - 4}" y2="{legend_y - 4}" '
        'stroke="#1f3a5f" stroke-width="2"/>'
    )
    parts.append(f'<text x="{left + 30}" y="{legend_y}" font-size="11">target</text>')
    parts.append(
        f'<rect x="{left + 90}" y="{legend_y - 10}" width="24" height="10" fill="#7fbf7f" fill-opacity="0.35"/>'
    )
    parts.append(
        f'<text x="{left + 120}" y="{legend_y}" font-size="11">tolerance ±{esc(fmt(tolerance * 100))} %</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def gain_loss_chart(
    title: str, names: Sequence[str], gained: Sequence[float], lost: Sequence[float], colours: Sequence[QColor]
) -> str:
    """An inline SVG chart of what each territory gains (up, green) and loses (down, red),
    with the net change as a dark tick."""
    n = len(names)
    bar = 30 if n <= 30 else max(6, 780 // max(n, 1))
    left, top, bottom, right = 70, 30, 110, 20
    half = 130
    width = max(left + right + max(n, 1) * bar, 330)
    height = top + 2 * half + bottom
    high = nice_ceiling(max([0.0] + [float(v) for v in gained] + [float(v) for v in lost]))
    zero = top + half

    def y(v: float) -> float:
        return zero - half * float(v) / high

    parts = _chart_start(title, width, height, left)
    for v in (-high, -high / 2, 0.0, high / 2, high):
        parts += _gridline(v, y, left, width - right, high, "#333" if v == 0 else "#eee")
    for k in range(n):
        x = left + k * bar
        g, lo = float(gained[k]), float(lost[k])
        parts.append(
            f'<rect x="{x + bar * 0.15:.1f}" y="{y(g):.1f}" width="{bar * 0.7:.1f}" '
            f'height="{zero - y(g):.1f}" fill="#4caf50"><title>{esc(names[k])} gains '
            f"{esc(fmt(g))}</title></rect>"
        )
        parts.append(
            f'<rect x="{x + bar * 0.15:.1f}" y="{zero:.1f}" width="{bar * 0.7:.1f}" '
            f'height="{y(-lo) - zero:.1f}" fill="#e57373"><title>{esc(names[k])} loses '
            f"{esc(fmt(lo))}</title></rect>"
        )
        parts.append(
            f'<line x1="{x + 2:.1f}" x2="{x + bar - 2:.1f}" y1="{y(g - lo):.1f}" y2="{y(g - lo):.1f}" '
            'stroke="#1f3a5f" stroke-width="3"/>'
        )
        parts.append(
            f'<rect x="{x + bar * 0.35:.1f}" y="{top + 2 * half + 4}" width="{bar * 0.3:.1f}" height="6" '
            f'fill="{colours[k].name()}"/>'
        )
        parts.append(_slanted_name(names[k], x + bar / 2, top + 2 * half + 16))
    legend_y = height - 10
    for offset, colour, text in ((0, "#4caf50", "gained"), (80, "#e57373", "lost")):
        parts.append(
            f'<rect x="{left + offset}" y="{legend_y - 10}" width="18" height="10" fill="{colour}"/>'
            f'<text x="{left + offset + 24}" y="{legend_y}" font-size="11">{text}</text>'
        )
    parts.append(
        f'<line x1="{left + 150}" x2="{left + 174}" y1="{legend_y - 5}" y2="{legend_y - 5}" '
        'stroke="#1f3a5f" stroke-width="3"/>'
        f'<text x="{left + 180}" y="{legend_y}" font-size="11">net</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def colours_for(count: int) -> list[QColor]:
    """Colours by position, for territories without a territory-table row."""
    return [territory_colour(k) for k in range(count)]


def colours_of(rows) -> list[QColor]:
    """The territory table's colours (the ones the layer style and the packets use), in row order."""
    return [QColor(row.colour) if row.colour else territory_colour(k) for k, row in enumerate(rows)]


def display_name(row) -> str:
    """A territory as people read it: its name, with its code when they differ."""
    return row.label if row.label == row.code else f"{row.label} ({row.code})"
