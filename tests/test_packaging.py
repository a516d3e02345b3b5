"""Packaging and CLI promises: every package listed, light imports, one-line errors."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from conftest import REPO, curator_env


def test_every_package_folder_is_listed_in_pyproject():
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    dirs = cfg["package-dir"]
    found = set()
    for pkg, folder in dirs.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            found.add(".".join([pkg, *rel.parts]) if rel.parts else pkg)
    # sub-packages of curator that live in curator/ are found under the "curator" mapping;
    # data-only packages (no __init__.py, files in package-data) are listed too
    data_only = set(cfg.get("package-data", {})) - found
    assert found | data_only == listed
    for pkg in data_only:
        parent, _, leaf = pkg.rpartition(".")
        assert (REPO / dirs[parent] / leaf).is_dir(), f"{pkg} is listed but has no folder"


def test_help_and_light_commands_do_not_import_heavy_modules():
    code = (
        "import sys\n"
        "from curator.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'great_expectations', 'datasets', 'peft') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=curator_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout
    assert "ingest" in r.stdout and "demo" in r.stdout


def test_console_script_is_installed():
    from pathlib import Path

    script = Path(sys.executable).parent / "curator"
    r = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "curator, version" in r.stdout


def test_readme_cli_reference_is_current():
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "cli_reference.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_readme_file_tree_lists_every_module():
    readme = (REPO / "README.md").read_text()
    tree = readme[readme.index("## Files"):]
    missing = []
    for folder in ("curator", "trainers", "reports", "scripts", "benchmarks"):
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel not in tree:
                missing.append(rel)
    assert not missing, f"README file tree lacks: {missing}"


def test_readme_schema_lists_every_table(ws):
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Workspace schema"):readme.index("## Files")]
    assert [t for t in ws.counts() if f"`{t}`" not in section] == []
