"""The HTML report: sections, determinism, no network references, XSS-proof output, size."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import curator_env
from report_fixtures import XSS, XSS_CORPUS, build_workspace

ALL_SECTIONS = ["overview", "labels", "dynamics", "gradsim", "reasoning", "examples", "exports"]
TAGS = {  # every element the report may contain; anything else came from data
    "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "h4", "p", "span", "nav", "a",
    "main", "section", "ul", "li", "strong", "div", "code", "table", "thead", "tbody", "tr", "th", "td", "button",
    "details", "summary", "dl", "dt", "dd", "figure", "figcaption", "article", "pre", "b", "footer", "script",
    "svg", "g", "line", "text", "circle", "rect", "path", "polyline",
}


class Page(HTMLParser):
    """Elements, attributes, and the text of <script> and <style> elements."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._in = tag
            (self.scripts if tag == "script" else self.styles).append("")

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in == "script":
            self.scripts[-1] += data
        elif self._in == "style":
            self.styles[-1] += data


def parse(html: str) -> Page:
    p = Page()
    p.feed(html)
    p.close()
    return p


def sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def render(ws_path: Path, out: Path, **kw):
    from curator.reports import ReportConfig, build_report
    from curator.store import Workspace

    with Workspace(ws_path, read_only=True) as ws:
        return build_report(ws, ReportConfig(out=str(out), **kw))


@pytest.fixture(scope="module")
def xss_report(tmp_path_factory):
    """The lab-sized workspace (384 examples, 60 steps, 3 runs) with the XSS corpus in every text field."""
    root = tmp_path_factory.mktemp("xss")
    ws_path = build_workspace(root / "ws.duckdb", n_examples=384, n_steps=60, n_runs=3, xss=XSS)
    summary = render(ws_path, root / "report.html")
    return ws_path, summary, (root / "report.html").read_text(encoding="utf-8")


def test_every_section_is_present_and_navigable(xss_report):
    _, summary, html = xss_report
    assert summary.sections == ALL_SECTIONS
    page = parse(html)
    ids = [a["id"] for t, a in page.tags if t == "section"]
    assert ids == ["glance", *ALL_SECTIONS]
    nav = [a["href"] for t, a in page.tags if t == "a"]
    assert nav == ["#glance", *(f"#{s}" for s in ALL_SECTIONS)]
    assert html.count('<svg class="chart"') >= 10


def test_workspace_with_only_examples_renders_the_overview_alone(tmp_path):
    ws_path = build_workspace(tmp_path / "ws.duckdb", n_examples=20, tables="examples")
    summary = render(ws_path, tmp_path / "r.html")
    assert summary.sections == ["overview"]
    html = (tmp_path / "r.html").read_text()
    for sid in ALL_SECTIONS[1:]:
        assert f'id="{sid}"' not in html and f'href="#{sid}"' not in html
    assert "<svg" not in html
    assert "20</div><div class=\"k\">examples" in html


def test_empty_workspace_renders_without_sections(tmp_path):
    from curator.store import Workspace

    with Workspace(tmp_path / "ws.duckdb"):
        pass
    summary = render(tmp_path / "ws.duckdb", tmp_path / "r.html")
    assert summary.sections == []
    assert "run <code>curator ingest</code> first" in (tmp_path / "r.html").read_text()


def test_same_workspace_gives_byte_identical_reports(xss_report, tmp_path):
    ws_path, _, html = xss_report
    render(ws_path, tmp_path / "again.html")
    assert (tmp_path / "again.html").read_text(encoding="utf-8") == html


def test_no_network_reference_of_any_kind(xss_report):
    _, _, html = xss_report
    page = parse(html)
    assert "http:" not in html and "https:" not in html
    assert "@import" not in html
    assert not re.search(r"url\(\s*(?!#)", html, re.I)
    for tag, attrs in page.tags:
        assert tag not in ("link", "iframe", "object", "embed", "img", "base", "form", "audio", "video", "source")
        for name in ("src", "href", "xlink:href", "action", "formaction", "srcset", "poster", "data"):
            if name in attrs:
                assert name == "href" and attrs[name].startswith("#"), (tag, name, attrs[name])


def test_xss_corpus_in_every_field_runs_no_script(xss_report):
    _, _, html = xss_report
    page = parse(html)
    from curator.reports.render import assets

    css, js = assets()
    # exactly our own script and stylesheet, unchanged
    assert page.scripts == [js]
    assert page.styles == [css]
    assert [t for t, _ in page.tags].count("script") == 1
    # the CSP meta comes before them and allows exactly their hashes
    metas = [a for t, a in page.tags if t == "meta" and a.get("http-equiv", "").lower() == "content-security-policy"]
    assert len(metas) == 1
    policy = metas[0]["content"]
    assert "default-src 'none'" in policy and "base-uri 'none'" in policy and "'unsafe-inline'" not in policy
    assert f"script-src {sha(js)};" in policy and f"style-src {sha(css)};" in policy
    assert html.index("Content-Security-Policy") < html.index("<style>") < html.index("<script>")
    # only known elements, no event handlers, no style attributes, no javascript: URLs
    assert {t for t, _ in page.tags} <= TAGS, {t for t, _ in page.tags} - TAGS
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert name != "style", tag
            assert "javascript:" not in (value or "").replace(" ", "").lower() or name in ("aria-label",), (tag, name)
    # the corpus appears, escaped, and never raw
    for s in XSS_CORPUS:
        if any(c in s for c in "<>\"'"):  # ("&lt;script&gt;" is itself what an escaped "<script>" looks like)
            assert s not in html, s
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&amp;lt;script&amp;gt;" in html
    assert "{{7*7}}" in html  # data is never evaluated as a template


def test_every_chart_is_well_formed_escaped_svg(xss_report):
    _, _, html = xss_report
    charts = re.findall(r'<svg class="chart".*?</svg>', html, re.S)
    assert len(charts) >= 10
    for chart in charts:
        root = ET.fromstring(chart)  # escaping mistakes would make this raise
        assert root.get("role") == "img" and root.get("aria-label")
        assert root.find("title") is not None
        for el in root.iter():
            assert not any(k.startswith("on") for k in el.attrib)


def test_lab_sized_report_is_under_2_mb(xss_report):
    _, summary, html = xss_report
    assert summary.bytes == len(html.encode("utf-8"))
    assert summary.bytes < 2_000_000


def test_scatter_points_are_sampled_beyond_max_points(xss_report):
    from curator.reports import data
    from curator.reports.config import ReportConfig
    from curator.store import Workspace

    ws_path, _, _ = xss_report
    with Workspace(ws_path, read_only=True) as ws:
        r = data.Reader(ws)
        config = ReportConfig(max_points=100)
        labels = data.labels(r, config, data.label_set(r, config))
    assert labels.scatter.sampled and labels.scatter.n_examples == 384
    assert 90 <= labels.scatter.n_marks <= 110
    assert set(labels.scatter.points) == {c["label"] for c in labels.counts}  # every label keeps some points
    assert all(p[2] == 1 for pts in labels.scatter.points.values() for p in pts)


def test_unknown_label_set_is_a_one_line_error(xss_report, tmp_path):
    from curator.errors import CuratorError

    ws_path, _, _ = xss_report
    with pytest.raises(CuratorError, match="no label set 'nope'"):
        render(ws_path, tmp_path / "r.html", label_set="nope")
    assert not (tmp_path / "r.html").exists()


def test_cli_report_writes_the_file_without_importing_torch(xss_report, tmp_path):
    ws_path, _, html = xss_report
    out = tmp_path / "cli.html"
    code = (
        "import sys\n"
        "from curator.cli import main\n"
        f"main(['-w', {str(ws_path)!r}, 'report', '--out', {str(out)!r}, '--top-n', '2'])\n"
        "print('HEAVY', [m for m in ('torch', 'transformers', 'peft') if m in sys.modules])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=curator_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout
    assert f"wrote {out}" in r.stdout and "MB" in r.stdout
    assert out.exists() and out.read_text(encoding="utf-8") != html  # --top-n 2 shows fewer examples


@pytest.mark.parametrize("emptied, absent", [
    (("exports", "export_drops"), {"exports"}),
    (("judgments", "reasoning"), {"reasoning"}),
    (("gradsim", "gradsim_groups"), {"gradsim"}),
    (("history",), {"dynamics"}),
    (("label_sets", "labels", "scores"), {"labels", "examples"}),
])
def test_a_section_is_absent_exactly_when_its_tables_are_empty(xss_report, tmp_path, emptied, absent):
    import shutil

    from curator.store import Workspace

    ws_path, _, _ = xss_report
    copy = tmp_path / "ws.duckdb"
    shutil.copyfile(ws_path, copy)
    with Workspace(copy) as ws:
        for table in emptied:
            ws.execute(f"DELETE FROM {table}")
    summary = render(copy, tmp_path / "r.html")
    assert summary.sections == [s for s in ALL_SECTIONS if s not in absent]
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert all(f'id="{s}"' not in html for s in absent)
