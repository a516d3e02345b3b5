"""The page: a Jinja2 template with autoescaping, one inline stylesheet, one inline script, and a CSP.

Every value from the workspace reaches the page through autoescaped template
expressions. The only strings marked safe are the SVG figures (every text in
them was escaped by `svg`), the stylesheet and the script (files shipped with
this package). The Content-Security-Policy meta tag allows nothing but that
stylesheet and that script, by their sha256, and `data:` images: no network,
no other script, no inline event handlers, no `style` attributes.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from curator.reports.palette import LABEL_COLOURS, NEUTRAL, SPARE_COLOURS

TEMPLATES = Path(__file__).parent / "templates"

# one CSS class per palette colour, so label swatches need no style attribute
CLASS_BY_COLOUR = {c: f"lab-{name}" for name, c in LABEL_COLOURS.items()}
CLASS_BY_COLOUR.update({c: f"lab-x{i}" for i, c in enumerate(SPARE_COLOURS)})
CLASS_BY_COLOUR[NEUTRAL] = "lab-none"


def csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


@lru_cache(maxsize=1)
def assets() -> tuple[str, str]:
    """(stylesheet, script): the shipped files, plus one swatch rule per palette colour."""
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    css += "".join(f".{cls} {{ --c: {colour}; }}\n" for colour, cls in CLASS_BY_COLOUR.items())
    js = (TEMPLATES / "report.js").read_text(encoding="utf-8")
    return css, js


def csp(css: str, js: str) -> str:
    return (f"default-src 'none'; img-src data:; style-src '{csp_hash(css)}'; script-src '{csp_hash(js)}'; "
            "base-uri 'none'; form-action 'none'")


def _pct(v, decimals: int = 0) -> str:
    return "" if v is None else f"{v:.{decimals}%}"


def _num(v, decimals: int = 3) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v != v:
        return ""
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return f"{v:.{decimals}f}"


def _sortkey(v) -> str:
    """A data-v attribute value: the number written plainly, or empty."""
    if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
        return ""
    return repr(float(v))


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["pct"] = _pct
    env.filters["num"] = _num
    env.filters["sortkey"] = _sortkey
    return env


def render(context: dict, figures: dict[str, str]) -> str:
    """The whole page as one string. figures: name -> SVG produced by `svg` (marked safe here)."""
    css, js = assets()
    page = environment().get_template("report.html.j2").render(
        **context, figures={k: Markup(v) for k, v in figures.items()},
        css=Markup(css), js=Markup(js), csp=csp(css, js))
    return page


def label_classes(colours: dict[str, str]) -> dict[str, str]:
    return {lab: CLASS_BY_COLOUR.get(c, "lab-none") for lab, c in colours.items()}
