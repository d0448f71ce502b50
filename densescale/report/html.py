"""Self-contained HTML: figures inlined as data URIs, tables from pandas, no external assets."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #345;padding-bottom:.2em}h2{margin-top:1.8em;color:#234}
.tablewrap{max-width:100%;overflow-x:auto;margin:.8em 0}
table{border-collapse:collapse;font-size:.88em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#eef2f6}
td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:.6em;vertical-align:top;text-align:center}
figure img{max-width:500px;border:1px solid #ddd}
figcaption{font-size:.85em;color:#555;max-width:500px}
pre{background:#f6f8fa;padding:.8em;overflow-x:auto;font-size:.85em}
.warn{background:#fff4e0;border-left:4px solid #e90;padding:.4em .8em;margin:.5em 0}
.note{color:#555;font-size:.9em}
tr.excluded td{color:#999;background:#f4f4f4}
tr.reference td{font-style:italic;background:#f3f7ee}
tr.paper td{color:#555;background:#f5f3fb}
.summary{border:2px solid #345;border-radius:6px;background:#f7f9fc;padding:.2em 1em .6em}
.summary h2{margin-top:.4em}.summary li{margin:.15em 0}
"""


class Markup(str):
    """A table cell or text that is already HTML (a link, say): inserted without escaping."""


def link(href: str, text: str) -> Markup:
    """An ``<a>`` element, ``href`` and ``text`` escaped."""
    return Markup(f'<a href="{html.escape(href, quote=True)}">{html.escape(text)}</a>')


def interval(lo: float | None, hi: float | None, digits: int = 3) -> str:
    """A confidence interval as "[a, b]" with ``digits`` significant digits ("" when unknown).

    >>> interval(3360.541780344849, 3723.4368899378965)
    '[3.36e+03, 3.72e+03]'
    """
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        return ""
    return f"[{float(lo):.{digits}g}, {float(hi):.{digits}g}]"


def _is_interval(v: object) -> bool:
    return (isinstance(v, (list, tuple)) and len(v) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v))


@dataclass
class Section:
    """One ``<h2>`` section; ``box=True`` draws it as the framed summary at the top."""

    title: str
    parts: list[str] = field(default_factory=list)
    box: bool = False

    def text(self, s: str, cls: str | None = None) -> Section:
        c = f' class="{cls}"' if cls else ""
        self.parts.append(f"<p{c}>{html.escape(s)}</p>")
        return self

    def warn(self, s: str) -> Section:
        return self.text(s, "warn")

    def items(self, lines: list[str]) -> Section:
        """A bullet list; each line escaped unless it is ``Markup``."""
        lis = "".join(f"<li>{x if isinstance(x, Markup) else html.escape(x)}</li>"
                      for x in lines)
        self.parts.append(f"<ul>{lis}</ul>")
        return self

    def code(self, s: str) -> Section:
        self.parts.append(f"<pre>{html.escape(s)}</pre>")
        return self

    def table(self, df: pd.DataFrame, float_format: str = "{:.4g}",
              row_classes: list[str | None] | None = None) -> Section:
        """A table; ``row_classes`` gives each row a CSS class ("excluded" greys it,
        "reference" marks a reference line such as BM25)."""
        self.parts.append(_table(df, float_format, row_classes))
        return self

    def figure(self, png: str | Path, caption: str) -> Section:
        data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
        self.parts.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
        return self


def _cell(v: object, float_format: str) -> str:
    if isinstance(v, Markup):
        return str(v)
    if _is_interval(v):
        return html.escape(interval(*v))
    if v is None or (not isinstance(v, (list, tuple, dict)) and pd.isna(v)):
        return ""
    if isinstance(v, float):
        return float_format.format(v)
    return html.escape(str(v))


def _table(df: pd.DataFrame, float_format: str, row_classes: list[str | None] | None) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for i, rec in enumerate(df.itertuples(index=False)):
        cls = row_classes[i] if row_classes is not None else None
        attr = f' class="{html.escape(cls)}"' if cls else ""
        cells = "".join(f"<td>{_cell(v, float_format)}</td>" for v in rec)
        rows.append(f"<tr{attr}>{cells}</tr>")
    return (f'<div class="tablewrap"><table class="dataframe"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def render(title: str, sections: list[Section], subtitle: str = "") -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    if subtitle:
        body.append(f'<p class="note">{html.escape(subtitle)}</p>')
    for s in sections:
        head = f"<h2>{html.escape(s.title)}</h2>{''.join(s.parts)}"
        body.append(f'<div class="summary">{head}</div>' if s.box else head)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
