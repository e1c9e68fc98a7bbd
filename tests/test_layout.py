"""The package's layout: imports point one way along the data's path, with no cycles."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "composer"
# A stage may import itself and the stages below it (cli -> generate/train/evaluate -> model/tokens/data -> music).
BELOW = {
    "music": set(),
    "harmony": {"music"},  # chords, labelling, the triad baseline: music theory, no tokens or models
    "tokens": {"music", "harmony"},
    "data": {"music", "tokens", "harmony"},
    "model": {"music", "tokens", "data", "harmony"},
    "generate": {"music", "tokens", "data", "model", "harmony"},
    "train": {"music", "tokens", "data", "model", "harmony"},
    "evaluate": {"music", "tokens", "data", "model", "harmony"},
    "studio": {"music", "tokens", "data", "model", "generate", "harmony"},
    "cli": {"music", "tokens", "data", "model", "generate", "train", "evaluate", "studio", "harmony"},
}
SHARED = {"errors", "files", "__init__"}  # foundations every stage may use


def _imports(path: Path) -> set[str]:
    """Top-level composer subpackages or modules a file imports (anywhere in it, lazily too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("composer"):
            parts = node.module.split(".")
            if len(parts) > 1:
                found.add(parts[1])
            else:  # from composer import X
                found.update(a.name for a in node.names if a.name != "__version__")
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("composer."))
    return found


@pytest.mark.parametrize("stage", sorted(BELOW))
def test_stages_import_only_what_lies_below(stage):
    for path in sorted((ROOT / stage).glob("*.py")):
        wrong = _imports(path) - BELOW[stage] - SHARED - {stage}
        assert not wrong, f"{path.relative_to(ROOT.parent)} imports {sorted(wrong)}"


def test_no_module_outside_the_stages():
    loose = {p.stem for p in ROOT.glob("*.py")} - SHARED - {"__main__"}
    assert not loose, f"modules outside the stage folders: {sorted(loose)}"


def test_modules_stay_small():
    big = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py") if (n := len(p.read_text().splitlines())) > 330}
    assert not big, f"modules over ~300 lines: {big}"
