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

ALL_SECTIONS = ["overview", "labels", "dynamics", "gradsim", "reasoning", "predictions", "examples", "exports"]
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
    (("prediction_sets", "predictions"), {"predictions"}),
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


def section(html: str, sid: str) -> str:
    start = html.index(f'<section id="{sid}"')
    return html[start: html.index("</section>", start)]


def copy_of(ws_path: Path, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "ws.duckdb"
    shutil.copyfile(ws_path, copy)
    return copy


def test_predictions_section_shows_what_was_learned_and_predicted(xss_report):
    import json

    from curator.store import Workspace

    ws_path, _, html = xss_report
    sec = section(html, "predictions")
    with Workspace(ws_path, read_only=True) as ws:
        metrics = json.loads(ws.sql("SELECT metrics FROM prediction_sets").fetchone()[0])
        counts = dict(ws.sql("SELECT predicted_label, count(*) FROM predictions GROUP BY 1").fetchall())
        n_pred = ws.sql("SELECT count(*) FROM predictions").fetchone()[0]
    # what was learned: label set, probe, model, sizes, and every warning, prominently
    assert metrics["label_set"] in sec and metrics["probe_run"] in sec and "probe-new" in sec
    assert f"{metrics['folds']}-fold" in sec and f"{metrics['n_holdout']} examples" in sec
    warn = sec[sec.index('class="callout warn"'):].split("</div>")[0]
    assert "held-out labels with fewer than 10 examples" in warn
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"positives{escaped}" in warn  # warnings, notes, features, model and prompts: all escaped
    assert f"left out{escaped}" in sec and f"meta.note={escaped}" in sec and f"forest{escaped}" in sec
    # per-label AUROC with its interval, the not-easy, held-out and reference columns
    for m in metrics["per_label"]:
        assert f"{m['auroc']:.3f} <span class=\"ci\">[{m['ci'][0]:.2f}, {m['ci'][1]:.2f}]</span>" in sec
        assert f"{m['holdout_auroc']:.3f}" in sec and f"{m['reference_auroc']:.3f}" in sec
        if m["auroc_not_easy"] is not None:
            assert f"{m['auroc_not_easy']:.3f}" in sec
    for name in ("not easy", "AUROC, held out", "AUROC vs reference"):
        assert f"<button type=\"button\">{name}</button>" in sec
    # the bar chart of predicted labels, one bar per label with its count, in the labels' palette colours
    chart = re.search(r'<svg class="chart"[^>]*aria-label="Predicted labels.*?</svg>', sec, re.S).group(0)
    from curator.reports.palette import LABEL_COLOURS

    for lab, n in counts.items():
        assert f">{n:,} ({n / n_pred:.0%})</text>" in chart and f'fill="{LABEL_COLOURS[lab]}"' in chart
    # the most confident predictions: 3 per label, with the probe's pass@1 (k/n) of the new example
    table = sec[sec.index("<h3>Most confident predictions</h3>"):]
    rows = re.findall(r"<tr><td><span class=\"chip\">", table)
    assert len(rows) == 3 * len(counts)
    assert len(re.findall(r'<span class="ci">\(\d+/32\)</span>', table)) == len(rows)
    assert table.count(f"= {escaped}") == len(rows)  # each prompt, cut and escaped
    # one finding at a glance, with the cross-validated macro AUROC
    glance = section(html, "glance")
    assert f"{n_pred:,} unlabelled examples have predicted labels:" in glance
    assert f"cross-validated macro AUROC {metrics['macro_auroc']:.3f}" in glance
    assert "likely unlearnable" in glance and "not labels" in glance


def test_predictions_warn_plainly_about_too_few_labelled_examples(tmp_path):
    ws_path = build_workspace(tmp_path / "small.duckdb", n_examples=40, n_steps=10, n_runs=2, n_new=12)
    render(ws_path, tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    sec = section(html, "predictions")
    warn = sec[sec.index('class="callout warn"'):].split("</div>")[0]
    assert "too few labelled examples to trust (40)" in warn
    assert "The predictor warns: too few labelled examples to trust (40)" in section(html, "glance")
    assert '<li class="warn"><strong>12 unlabelled examples have predicted labels:' in html


def test_prediction_set_without_predictions_or_held_out_part(xss_report, tmp_path):
    import json

    from curator.store import Workspace

    ws_path, _, _ = xss_report
    copy = copy_of(ws_path, tmp_path)
    with Workspace(copy) as ws:
        ws.execute("DELETE FROM predictions")
        m = json.loads(ws.sql("SELECT metrics FROM prediction_sets").fetchone()[0])
        m["n_holdout"], m["reference_label_set"] = 0, None
        for row in m["per_label"]:
            for k in ("holdout_auroc", "holdout_ci", "reference_auroc", "reference_ci"):
                row[k] = None
        ws.execute("UPDATE prediction_sets SET metrics = ?", [json.dumps(m)])
    summary = render(copy, tmp_path / "r.html")
    assert "predictions" in summary.sections
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    sec = section(html, "predictions")
    assert "Nothing to predict" in sec and "<svg" not in sec and "Most confident" not in sec
    assert "AUROC, held out" not in sec and "AUROC vs reference" not in sec and "not easy" in sec
    assert "nothing was predicted" in section(html, "glance")


def test_imported_runs_show_importer_source_links_and_warnings(xss_report):
    import json

    from curator.store import Workspace

    ws_path, _, html = xss_report
    with Workspace(ws_path, read_only=True) as ws:
        run_id, cfg = ws.sql("SELECT run_id, config FROM runs WHERE kind = 'import'").fetchone()
        steps, n_ex = ws.sql("SELECT count(DISTINCT step), count(DISTINCT example_id) FROM history WHERE run_id = ?",
                             [run_id]).fetchone()
    cfg = json.loads(cfg)
    ov = section(html, "overview")
    table = ov[ov.index("<h3>Imported runs</h3>"):]
    table = table[: table.index("</table>")]
    assert run_id in table and "initial <span class=\"mono\">probe-initial</span>" in table
    assert f'<td class="num">{steps:,}<div class="ci">' in table and f'<td class="num">{n_ex:,}</td>' in table
    assert "/data/verl/rollout_data&lt;script&gt;" in table and "cut; " in table  # the long source is cut
    assert "verl&lt;script&gt;alert(1)&lt;/script&gt;" in table  # the importer (backend), escaped
    details = table[table.index('<details class="warnings">'):]
    assert f"<summary>{len(cfg['warnings'])} importer warnings</summary>" in details
    assert details.count("<li>") == len(cfg["warnings"]) and "look filtered by dynamic sampling&lt;script&gt;" in details


def test_dynamics_include_imported_runs_of_the_label_set(xss_report, tmp_path):
    import json

    from curator.reports import data
    from curator.reports.config import ReportConfig
    from curator.store import Workspace

    ws_path, _, html = xss_report
    dyn = section(html, "dynamics")
    assert "Imported from another trainer" in dyn and "import-verl-" in dyn and "(imported:" not in dyn
    copy = copy_of(ws_path, tmp_path)
    with Workspace(copy) as ws:
        run_id = ws.sql("SELECT run_id FROM runs WHERE kind = 'import'").fetchone()[0]
        runs = json.loads(ws.sql("SELECT run_ids FROM label_sets").fetchone()[0])
        ws.execute("UPDATE label_sets SET run_ids = ?", [json.dumps(runs + [run_id])])
    config = ReportConfig(max_runs=1)
    with Workspace(ws_path, read_only=True) as ws:
        r = data.Reader(ws)
        before = data.dynamics(r, config, data.label_set(r, config))
    with Workspace(copy, read_only=True) as ws:
        r = data.Reader(ws)
        after = data.dynamics(r, config, data.label_set(r, config))
    assert before.labelled_imports == [] and after.labelled_imports == [run_id]
    assert before.by_label != after.by_label  # its history counts in the label groups' reward
    assert list(before.by_run) == [runs[0]] and list(after.by_run) == [runs[0]]  # the label set's runs first
    render(copy, tmp_path / "r.html")
    assert f'(imported: <span class="mono">{run_id}</span>)' in section((tmp_path / "r.html").read_text(), "dynamics")
