"""`compose lab` end to end on a tiny corpus: nine short runs, a report with its table and plots."""

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from composer.cli import main

REAL = Path(__file__).parent / "fixtures" / "real"


def test_lab_writes_a_report_with_the_table_and_three_plots(tmp_path):
    data = tmp_path / "tunes"
    data.mkdir()
    for p in REAL.glob("*.mid"):
        shutil.copyfile(p, data / p.name)
    out = tmp_path / "lab"
    r = CliRunner().invoke(main, ["lab", "--minutes", "0.01", "--hidden", "8", "--dropout-files", "20",
                                  "--data", str(data), "--out", str(out)])
    assert r.exit_code == 0, r.output
    report = (out / "report.md").read_text()
    for cell in ("rnn", "gru", "lstm"):
        assert f"| {cell} | no |" in report and f"| {cell} | yes |" in report
    for png in ("memory.png", "gradient.png", "dropout.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({png})" in report
    results = json.loads((out / "results.json").read_text())  # strict JSON: no NaN
    params = {row["cell"]: row["parameters"] for row in results["cells"] if not row["copy_hints"]}
    assert max(params.values()) < 1.5 * min(params.values())  # about the same size
    assert set(results["dropout"]) == {"dropout 0", "dropout 0.3", "dropout 0.5"}


def test_lab_refuses_a_missing_data_folder(tmp_path):
    r = CliRunner().invoke(main, ["lab", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "lab")])
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1
