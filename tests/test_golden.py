"""The same seed and options give the same file, byte for byte, as when the golden files were made."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "golden"))
from cases import CASES, HERE, run  # noqa: E402


@pytest.mark.parametrize("name", sorted(CASES))
def test_generate_matches_golden_files(name, tmp_path):
    for path in run(name, tmp_path):
        assert path.read_bytes() == (HERE / path.name).read_bytes(), f"{path.name} differs from the golden file"
