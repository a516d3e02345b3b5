"""The HTML report (installed as `curator.reports`); reads the workspace, never imports torch.

One self-contained HTML file per workspace: inline CSS, one small inline script
(sortable tables), inline SVG charts, a Content-Security-Policy that allows
nothing else, no network reference of any kind.

Modules, one concept each:

- `config`   ReportConfig, every report setting
- `data`     one aggregation per section, in DuckDB SQL; None when a section's tables are empty
- `palette`  one colour-blind-safe colour per label (Okabe-Ito), the same in every figure
- `svg`      hand-written deterministic SVG charts, every text escaped
- `figures`  section data to charts (axes, colours, captions' subjects)
- `glance`   the plain-language findings at the top of the page
- `render`   the Jinja2 template (autoescaped), stylesheet, script and CSP hashes
- `build`    build_report: collect, draw, render, write atomically
"""

from curator.reports.build import ReportSummary, build_report, render_report
from curator.reports.config import ReportConfig

__all__ = ["ReportConfig", "ReportSummary", "build_report", "render_report"]
