"""A complete shard is reused only with the same settings: `memwh infer` reruns into one --out."""

from __future__ import annotations

import re
import sys

import pyarrow.parquet as pq

from memwh.cli import main
from memwh.core import contract


def _infer(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """`memwh infer ARGS` in-process through the real entry point: (exit code, stderr)."""
    monkeypatch.setattr(sys, "argv", ["memwh", "infer", *args])
    try:
        main()
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    return code, capsys.readouterr().err


def test_rerun_with_other_settings_stops_and_names_them(
    tiny_suite, token_table, tmp_path, monkeypatch, capsys
):
    other_data = tmp_path / "same-rows-other-file.parquet"
    pq.write_table(pq.read_table(token_table), other_data, compression="snappy")
    out = tmp_path / "out"
    base = [
        "--model", str(tiny_suite), "--revision", "step2", "--out", str(out), "--device", "cpu",
        "--batch-size", "16",
    ]  # fmt: skip
    first = [*base, "--data", str(token_table), "--seq-range", "100:130"]
    code, err = _infer(monkeypatch, capsys, *first, "-q")
    assert code == 0
    man = contract.shard_paths(out, "tiny-50k", "step2", 0, 1)[1]
    run_id = contract.read_manifest(man)["run_id"]

    code, err = _infer(monkeypatch, capsys, *first, "--batch-size", "4")
    assert code == 0 and "skipped" in err and "same settings" in err
    for args, diff in (
        (["--data", str(other_data), "--seq-range", "100:130"], r"data_fingerprint parquet-\w+ -> parquet-\w+"),
        (["--data", str(token_table), "--seq-range", "100:140"], "seq_range 100:130 -> 100:140"),
        (["--data", str(token_table), "--seq-range", "100:130", "--dtype", "bf16"], "dtype float32 -> bfloat16"),
    ):  # fmt: skip
        code, err = _infer(monkeypatch, capsys, *base, *args)
        assert code == 2, err
        line = " ".join(err.split())  # rich may wrap the one logical line at the terminal width
        assert "shard complete with other settings" in line
        assert re.search(diff, line), line
        assert "--name" in line and "--out" in line and "--force" in line
        assert contract.read_manifest(man)["run_id"] == run_id  # nothing replaced

    code, err = _infer(
        monkeypatch,
        capsys,
        *base,
        "--data",
        str(other_data),
        "--seq-range",
        "100:130",
        "--force",
        "-q",
    )
    assert code == 0
    assert contract.read_manifest(man)["data_source"] == str(other_data)
