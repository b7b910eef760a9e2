"""The default demo suite must show what the report is about (issue 2, item 7)."""

from __future__ import annotations

import polars as pl
import pytest

from memwh.demo_suite.measure import memorization_table


@pytest.fixture(scope="module")
def mem(default_suite, all_cores) -> pl.DataFrame:
    with all_cores():  # ~30 demo checkpoints' forward passes
        return memorization_table(default_suite, n_background=256)


@pytest.mark.slow
def test_every_final_model_memorizes_canaries(mem):
    final = mem.filter(pl.col("step") == pl.col("step").max())
    per_model = (
        final.filter(pl.col("duplicates") > 0).group_by("model").agg(pl.col("n_memorized").sum())
    )
    assert per_model.height >= 4
    assert per_model["n_memorized"].min() >= 1


@pytest.mark.slow
def test_memorization_rises_with_size_duplication_and_training(mem):
    can = mem.filter(pl.col("duplicates") > 0)
    last = can["step"].max()
    by_model = (
        can.filter(pl.col("step") == last)
        .group_by("n_params")
        .agg(pl.col("n_memorized").sum())
        .sort("n_params")
    )
    counts = by_model["n_memorized"].to_list()
    assert counts == sorted(counts) and counts[-1] > counts[0]  # larger models memorize more
    by_dup = (
        can.filter(pl.col("step") == last)
        .group_by("duplicates")
        .agg(pl.col("n_memorized").sum())
        .sort("duplicates")
    )
    d = by_dup["n_memorized"].to_list()
    assert d[-1] > d[0] and d[-1] == max(d)  # more copies -> more memorized
    by_step = (
        can.group_by("step").agg(pl.col("n_memorized").sum()).sort("step")["n_memorized"].to_list()
    )
    assert by_step[-1] > by_step[0]  # later checkpoints memorize more
    # background rows (unique, 1 copy) are essentially never reproduced verbatim
    bg = mem.filter((pl.col("duplicates") == 0) & (pl.col("step") == last))
    assert bg["n_memorized"].sum() <= 0.01 * bg["n_scored"].sum()


@pytest.mark.slow
def test_cli_build_is_cached_and_prints_manifest(default_suite, monkeypatch):
    import time

    from typer.testing import CliRunner

    from memwh.cli import app

    monkeypatch.setenv("COLUMNS", "120")
    t0 = time.perf_counter()
    res = CliRunner().invoke(app, ["suite", "build", "--out", str(default_suite)])
    assert res.exit_code == 0, res.output
    assert time.perf_counter() - t0 < 5
    assert "demo-4.7m" in res.output and "step" in res.output
