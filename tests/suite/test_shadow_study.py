"""The shadow study (`memwh demo --study shadow`) on a small population: real tiny GPT-NeoX
models trained on random halves, scored, ingested with their exposure and roles, built. LiRA
separates the audited model's members from its non-members better than loss alone."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from memwh.core.errors import MemwhError

pytestmark = pytest.mark.slow

# ~20 s of training on the 2-core box (the default study: 16 shadow models, 256 sequences)
SMALL = {"n_shadow": 8, "n_sequences": 64, "epochs": 6, "size": (32, 1, 2, 2e-2)}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory):
    from rich.console import Console

    from memwh.demo import run_shadow_study

    home = tmp_path_factory.mktemp("shadow-home")
    return run_shadow_study(home, console=Console(quiet=True), **SMALL)


def q(db, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def test_exposure_is_each_models_training_half(study) -> None:
    from memwh.demo_suite import read_manifest
    from memwh.demo_suite.shadow import ShadowSettings, memberships

    m = read_manifest(study.suite_dir)
    s = ShadowSettings(**SMALL)
    keep = memberships(s)
    assert m["models"] == s.model_names()
    for k, model in enumerate(m["models"]):
        t = pq.read_table(study.suite_dir / "exposure" / f"{model}.parquet").to_pydict()
        trained = np.array([f is not None for f in t["first_step"]])
        assert (trained == keep[k]).all() and trained.sum() == s.n_sequences // 2
        assert {n for n in t["n_exposures"] if n is not None} == {s.epochs}
    # the warehouse agrees: every shadow unit is in the population, with its half in / out
    units = q(study.db, "SELECT n_in, n_out, is_included FROM shadow_units")
    assert len(units) == s.n_shadow
    assert all(r == (s.n_sequences // 2, s.n_sequences // 2, True) for r in units)


def test_lira_beats_loss(study) -> None:
    auc = dict(
        q(
            study.db,
            "SELECT signal, roc_auc FROM membership_inference WHERE model = 'shadow-target' "
            "AND nonmember_kind = 'held_out'",
        )
    )
    assert auc["lira_online_loss"] > auc["loss"] + 0.05, auc
    assert auc["lira_offline_loss"] > auc["loss"], auc
    # the counterfactual of loss is positive on average: training on a sequence lowers its loss
    (cf,) = q(
        study.db,
        "SELECT avg(counterfactual) FROM counterfactual_memorization WHERE signal = 'loss'",
    )[0]
    assert cf > 0


def test_second_run_reuses_everything(study, tmp_path) -> None:
    from memwh.demo_suite.shadow import build_shadow_suite

    before = (study.suite_dir / "suite_manifest.json").stat().st_mtime_ns
    assert build_shadow_suite(study.suite_dir, progress=False, **SMALL) == study.suite_dir
    assert (study.suite_dir / "suite_manifest.json").stat().st_mtime_ns == before
    with pytest.raises(MemwhError, match="unknown setting"):
        build_shadow_suite(tmp_path / "x", n_models=3)


def test_cli_rejects_unknown_study(tmp_path) -> None:
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-c", "from memwh.cli import main; main()", "demo", "--home",
         str(tmp_path), "--study", "nope"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and "optional studies are: shadow" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not any(tmp_path.iterdir())
