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
    # sub-packages of curator that live in curator/ are found under the "curator" mapping
    assert found == listed


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
