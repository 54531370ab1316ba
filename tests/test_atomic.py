"""The one atomic writer: a failed write leaves the old file whole and no temporary file behind."""

from __future__ import annotations

import pytest

from wdmt.atomic import atomic_path, read_csv, write_csv_atomic, write_json_atomic


def test_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "metrics.json"
    write_json_atomic(target, {"auroc": 0.7})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("{half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == '{\n  "auroc": 0.7\n}'
    assert sorted(p.name for p in target.parent.iterdir()) == ["metrics.json"]


def test_temporary_keeps_the_suffix_for_writers_that_pick_a_format_by_it(tmp_path):
    with atomic_path(tmp_path / "roc.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path and tmp.name.startswith(".")
        tmp.write_bytes(b"x")
    assert (tmp_path / "roc.png").read_bytes() == b"x"


def test_csv_header_wider_than_rows_and_round_trip(tmp_path):
    path = write_csv_atomic(tmp_path / "log.csv", [{"epoch": 1, "loss": 0.5}], ["epoch", "loss", "recon"])
    assert read_csv(path) == [{"epoch": "1", "loss": "0.5", "recon": ""}]
    with pytest.raises(ValueError, match="no header"):
        write_csv_atomic(tmp_path / "empty.csv", [])
