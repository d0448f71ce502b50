"""`annotate --out` under file-system faults: one clear error line, exit 1, nothing left."""

from __future__ import annotations

import pytest

from densescale.data import open_dataset


@pytest.mark.parametrize("fault", ["file", "readonly", "full"])
def test_annotate_output_faults(tmp_path, scifact_path, cli_fault, leftovers, fault):
    open_dataset(scifact_path)  # build the corpus index before the fault (it is a cache write)
    out = tmp_path / "parent" / "ict"
    r = cli_fault(["annotate", "ict", "--data", scifact_path, "--out", out, "--limit", "40",
                   "--no-progress"], fault, out)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert lines[0].startswith(f"error: {out}: ")
    reason = {"file": f"{out.parent} is a file, not a folder",
              "readonly": "Permission denied", "full": "File too large"}[fault]
    assert reason in lines[0]
    assert leftovers(tmp_path) == []
    if fault != "file":
        assert list(out.iterdir()) == []  # no set, not even a part of one
