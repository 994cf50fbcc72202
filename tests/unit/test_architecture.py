"""The layers of helios_live hold, and the contracts that say so can fail: the real package with
one upward import, or one cycle, breaks them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

from tests.conftest import REPO

CONTRACTS = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
LIVE = [c for c in CONTRACTS if c["type"] in ("layers", "acyclic_siblings") or "venue" in c["name"]]


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter with helios_live's own contracts, on the copy of helios_live under `root`."""
    lines = ['[tool.importlinter]\nroot_packages = ["helios_live"]\n']
    for contract in LIVE:
        lines.append("\n[[tool.importlinter.contracts]]\n")
        lines += [f"{key} = {json.dumps(value)}\n" for key, value in contract.items()]  # JSON is TOML here
    config = root / "contracts.toml"
    config.write_text("".join(lines))
    return subprocess.run(  # noqa: S603 -- the project's own linter on a copy of its code
        [sys.executable, "-c", LINT, str(config), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "helios_live", tmp_path / "helios_live", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_helios_live_keeps_its_layers_and_has_no_cycle(tmp_path: Path) -> None:
    result = _lint(_copy(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("KEPT") == len(LIVE)


def test_an_upward_import_breaks_the_layers_contract(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    clock = root / "helios_live" / "clock.py"
    clock.write_text(clock.read_text() + "\nfrom helios_live.kernel import kernel  # noqa\n")

    result = _lint(root)

    assert result.returncode == 1
    assert "helios_live layers" in result.stdout and "BROKEN" in result.stdout
    assert "helios_live.clock -> helios_live.kernel" in result.stdout


def test_a_trading_module_that_imports_a_venue_breaks_the_venue_contract(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    desk = root / "helios_live" / "trading" / "desk.py"
    desk.write_text(desk.read_text() + "\nfrom helios_live.venues.valr import wire  # noqa\n")

    result = _lint(root)

    assert result.returncode == 1 and "the engine knows no venue" in result.stdout


def test_a_cycle_between_two_modules_of_one_layer_breaks_the_cycle_contract(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    lake = root / "helios_live" / "data" / "lake.py"
    lake.write_text(lake.read_text() + "\nfrom helios_live.data import history  # noqa\n")  # history -> lake -> history

    result = _lint(root)

    assert result.returncode == 1 and "no import cycles" in result.stdout


def test_no_module_of_helios_live_is_in_an_import_cycle() -> None:
    graph = grimp.build_graph("helios_live")
    cycles = [
        (module, other)
        for module in graph.modules
        for other in graph.find_modules_directly_imported_by(module)
        if graph.chain_exists(imported=module, importer=other)
    ]

    assert cycles == []
