"""Shadow-model populations: counterfactual_memorization, lira_scores and the LiRA signals of
membership_inference equal an independent numpy/scipy computation (1e-9) on a small synthetic
population written through the real ingest path (shadow_fixture), under both LiRA variance
models; too few in / out models give NULL; a shadow unit without exposure is left out with a
reason and a build warning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from membership_independent import read, sk_metrics
from shadow_fixture import DATASET, FAMILY, N_SEQ, N_SHADOW, NO_EXPOSURE, TARGET, build_population
from shadow_independent import expected_fits, expected_lira

pytestmark = pytest.mark.slow
TOL = 1e-9
FLOOR = 0.001


def close(got, want, what) -> None:
    if want is None:
        assert got is None, what
    else:
        assert got is not None and abs(got - want) <= TOL * max(1.0, abs(want)), (what, got, want)


@pytest.fixture(scope="module")
def shadow_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    from memwh.warehouse.build import build

    d = tmp_path_factory.mktemp("wh-shadow")
    db = d / "shadow.duckdb"
    build_population(d, db)
    result = build(db, quiet=True, target_path=d / "target", unit_tests=False)
    return d, db, result


def check_counterfactual(db: Path, min_models: int, variance: str) -> dict:
    fits = expected_fits(db, min_models, variance, FLOOR)
    got = read(db, "SELECT * FROM counterfactual_memorization")
    assert set(got["family"]) == {FAMILY} and set(got["dataset"]) == {DATASET}
    assert set(got["n_shadow_units"]) == {N_SHADOW}  # the unit without exposure is left out
    assert {(r["seq_idx"], r["signal"]) for r in got.iter_rows(named=True)} == set(fits)
    for r in got.iter_rows(named=True):
        w = fits[(r["seq_idx"], r["signal"])]
        assert (r["n_in"], r["n_out"]) == (w["n_in"], w["n_out"])
        for c in ("mean_in", "mean_out", "sd_in", "sd_out", "counterfactual"):
            close(r[c], w[c], (r["seq_idx"], r["signal"], c))
    return fits


def check_lira(db: Path, fits: dict, min_models: int) -> dict:
    want = expected_lira(db, TARGET, fits, min_models)
    got = read(db, f"SELECT * FROM lira_scores WHERE model = '{TARGET}'")
    assert {(r["seq_idx"], r["signal"]) for r in got.iter_rows(named=True)} == set(want)
    for r in got.iter_rows(named=True):
        k = (r["seq_idx"], r["signal"])
        w, f = want[k], fits[k]
        assert r["membership"] == w["membership"] and r["is_primary"]
        close(r["score"], w["score"], (k, "score"))
        close(r["lira_sd_in"], f["lira_sd_in"], (k, "sd_in"))
        close(r["lira_sd_out"], f["lira_sd_out"], (k, "sd_out"))
        close(r["lira_online"], w["lira_online"], (k, "online"))
        close(r["lira_offline"], w["lira_offline"], (k, "offline"))
    # only the audited unit: shadow units (and the excluded one) are never audited
    assert set(read(db, "SELECT DISTINCT model FROM lira_scores")["model"]) == {TARGET}
    return want


def check_membership_lira(db: Path, want: dict) -> None:
    """The LiRA rows of membership_inference are scikit-learn's metrics of the lira_scores
    values (checked against scipy above; their own ulps decide ties, as they do in the
    warehouse) with the independent membership labels."""
    got = read(
        db,
        f"SELECT * FROM membership_inference WHERE model = '{TARGET}' AND signal LIKE 'lira_%'",
    )
    assert got.height == 12  # 2 statistics x 6 signals x held_out
    # shadow units are population draws: no membership rows of their own
    units = read(db, "SELECT DISTINCT model FROM membership_inference")["model"].to_list()
    assert units == [TARGET]
    stats = read(db, f"SELECT * FROM lira_scores WHERE model = '{TARGET}'")
    for r in got.iter_rows(named=True):
        _, stat, base = r["signal"].split("_", 2)
        vals = [
            (want[(x["seq_idx"], base)]["membership"] == "member", x[f"lira_{stat}"])
            for x in stats.filter(stats["signal"] == base).iter_rows(named=True)
            if x[f"lira_{stat}"] is not None
        ]
        y = np.array([v[0] for v in vals], dtype=int)
        s = np.array([v[1] for v in vals])
        assert (r["n_members"], r["n_nonmembers"]) == (y.sum(), len(y) - y.sum())
        m = sk_metrics(y, s)
        for k in ("roc_auc", "average_precision", "tpr_at_fpr_0001", "tpr_at_fpr_01"):
            assert abs(r[k] - m[k]) <= 1e-12, (r["signal"], k)


def test_shadow_marts_equal_independent(shadow_db) -> None:
    _, db, _ = shadow_db
    fits = check_counterfactual(db, 2, "global")
    # the edge sequences: seq 0 has one out model, seq 1 one in model
    assert fits[(0, "loss")]["n_out"] == 1 and fits[(0, "loss")]["counterfactual"] is None
    assert fits[(1, "loss")]["n_in"] == 1 and fits[(1, "loss")]["counterfactual"] is None
    want = check_lira(db, fits, 2)
    assert want[(0, "loss")]["lira_online"] is None and want[(0, "loss")]["lira_offline"] is None
    assert (
        want[(1, "loss")]["lira_online"] is None and want[(1, "loss")]["lira_offline"] is not None
    )
    # both tails of the out Gaussian: seq 2 far on the member side, seq 3 far on the other
    assert want[(2, "loss")]["lira_offline"] > 100
    assert want[(3, "loss")]["lira_offline"] < 1e-12
    check_membership_lira(db, want)


def test_per_sequence_variance_and_min_models(shadow_db, tmp_path) -> None:
    """Other vars on a copy of the built warehouse: the fits, LiRA and (incrementally, via the
    population fingerprint) the membership rows all follow."""
    import shutil

    from memwh.warehouse.build import build

    d, built, _ = shadow_db
    db = tmp_path / "copy.duckdb"
    shutil.copy(built, db)
    shutil.copytree(d / "target", tmp_path / "target")
    vars = {"lira_variance": "per_sequence", "shadow_min_models": 3}
    build(db, quiet=True, target_path=tmp_path / "target", vars=vars, unit_tests=False)
    fits = check_counterfactual(db, 3, "per_sequence")
    assert any(f["n_in"] == 2 and f["counterfactual"] is None for f in fits.values())
    want = check_lira(db, fits, 3)
    check_membership_lira(db, want)


def test_shadow_unit_without_exposure_is_excluded(shadow_db) -> None:
    _, db, result = shadow_db
    units = read(db, "SELECT * FROM shadow_units ORDER BY model")
    assert units.height == N_SHADOW + 1
    bad = units.filter(units["model"] == NO_EXPOSURE).row(0, named=True)
    assert not bad["is_included"] and "memwh import exposure" in bad["exclusion_reason"]
    assert (
        units.filter(units["is_included"])["n_in"].sum()
        + units.filter(units["is_included"])["n_out"].sum()
        == N_SHADOW * N_SEQ
    )
    assert any(NO_EXPOSURE in w and "memwh import exposure" in w for w in result.warnings)


def test_lira_beats_loss_on_the_fixture(shadow_db) -> None:
    """The fixture's per-sequence effects make a sequence's shadow fits more informative than
    a global loss threshold (the premise of LiRA)."""
    _, db, _ = shadow_db
    auc = dict(
        read(
            db,
            f"SELECT signal, roc_auc FROM membership_inference WHERE model = '{TARGET}' "
            "AND signal IN ('loss', 'lira_online_loss', 'lira_offline_loss')",
        ).iter_rows()
    )
    assert auc["lira_online_loss"] > auc["loss"] + 0.1, auc
    assert auc["lira_offline_loss"] > auc["loss"], auc
