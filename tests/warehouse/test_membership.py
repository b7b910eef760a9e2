"""membership_inference, memorization_forecast, memorization_rates *_seen and signal_curves:
every number equals scikit-learn (1e-12) or an independent computation, on a synthetic
warehouse with heavy ties, on the real PR #161 rows and on the demo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from membership_independent import expected_forecast, expected_membership, membership_rows, read
from wh_fixtures import add_run, make_db

from memwh.ingest import declare_exposure_rule, import_exposure

pytestmark = pytest.mark.slow
TOL = 1e-12
METRICS = ("roc_auc", "average_precision", "tpr_at_fpr_0001", "tpr_at_fpr_001", "tpr_at_fpr_01")


def add_signal_rows(con, run_id: str, n: int, seed: int, member_shift: np.ndarray) -> None:
    """Integer-valued / coarse signals (heavy ties) for seq_idx 0..n-1; member_shift moves the
    signals of some rows towards "member/memorized"."""
    rng = np.random.default_rng(seed)
    (key,) = con.execute("select run_key from raw.runs where run_id = ?", [run_id]).fetchall()[0]
    pml = np.minimum(rng.geometric(0.25, n) - 1 + 6 * member_shift, 40).astype(int)
    loss = np.round(rng.gamma(3.0, 0.5, n) - 0.6 * member_shift, 1)
    rows = pl.DataFrame(
        {
            "run_key": key,
            "seq_idx": np.arange(n),
            "prefix_match_len": pml,
            "exact_match": pml >= 32,
            "memorization_score": np.where(pml >= 32, 1.0, np.minimum(pml + 3, 31) / 32),
            "tf_token_accuracy": np.minimum(pml + rng.integers(0, 4, n), 32) / 32,
            "loss": loss,
            "min_k_logprob": np.round(-2 * loss - rng.integers(0, 3, n), 0),
            "zlib_ratio": np.round(loss / 2, 1),
        }
    ).with_columns(
        zlib_ratio=pl.when(pl.Series(rng.random(n)) < 0.1).then(None).otherwise("zlib_ratio")
    )
    con.register("_rows", rows.to_arrow())
    con.execute("insert into raw.score_rows by name select * from _rows")
    con.unregister("_rows")


N = 3000


def load_ties(con) -> None:
    """Family 'tie': two sizes x steps 5 and 10 over 3000 sequences (dataset 'tie-data', 200
    sequences per step, the last 600 never trained), plus 'tie-rule' whose membership comes
    from the rule, and 'tie-none' (no exposure: no membership rows)."""
    first = np.where(np.arange(N) < 2400, np.arange(N) // 200, -1)
    for model, n_params, seed in (("tie-s", 1_000, 1), ("tie-l", 8_000, 2), ("tie-rule", 2_000, 3)):
        for step in (5, 10):
            run = f"{model}-{step}"
            add_run(
                con,
                run,
                model,
                f"step{step}",
                family="tie" if model != "tie-rule" else "rule",
                step=step,
                n_params=n_params,
                seq_start=0,
                seq_end=N,
                n_rows=N,
                sequences_per_step=200,
                tokens_per_step=200 * 64,
                data_fingerprint="tie-data",
            )
            seen = (first >= 0) & (first < step)
            add_signal_rows(
                con, run, N, seed * 100 + step, seen.astype(int) * (1 + model.count("l"))
            )
    add_run(
        con,
        "none-1",
        "tie-none",
        "step5",
        family="none",
        n_rows=N,
        seq_start=0,
        seq_end=N,
        data_fingerprint="tie-data",
    )
    add_signal_rows(con, "none-1", N, 9, np.zeros(N, int))


@pytest.fixture(scope="module")
def ties_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from memwh.warehouse.build import build

    d = tmp_path_factory.mktemp("wh-ties")
    db = make_db(d / "ties.duckdb", load_ties)
    # exposure table for the 'tie' family (one row per sequence; the first 10 are absent:
    # their membership is unknown), the rule for 'tie-rule'
    exp = pl.DataFrame(
        {
            "seq_idx": np.arange(10, N),
            "first_step": [i // 200 if i < 2400 else None for i in range(10, N)],
        }
    )
    exp.write_csv(d / "exposure.csv")
    for model in ("tie-s", "tie-l"):
        import_exposure(d / "exposure.csv", model=model, db=db)
    declare_exposure_rule(model="tie-rule", sequences_per_step=200, train_steps=12, db=db)
    assert build(db, quiet=True, target_path=d / "target", unit_tests=False).success
    return db


def check_membership(db: Path) -> int:
    want = expected_membership(db)
    got = read(db, "SELECT * FROM membership_inference")
    keys = {
        (r["model"], r["revision"], r["signal"], r["nonmember_kind"])
        for r in got.iter_rows(named=True)
    }
    assert keys == set(want)
    for r in got.iter_rows(named=True):
        w = want[(r["model"], r["revision"], r["signal"], r["nonmember_kind"])]
        assert (r["n_members"], r["n_nonmembers"]) == (w["n_members"], w["n_nonmembers"])
        for m in METRICS:
            assert abs(r[m] - w[m]) <= TOL, (r, m, w[m])
        assert abs(r["roc_auc"] - w["delong_auc"]) <= TOL
        for b in ("roc_auc_lo", "roc_auc_hi"):
            assert (r[b] is None) == (w[b] is None)
            if w[b] is not None:
                assert abs(r[b] - w[b]) <= 1e-9, (r, b, w[b])
    return len(keys)


def check_forecast(db: Path) -> int:
    want = expected_forecast(db)
    got = read(db, "SELECT * FROM memorization_forecast")
    keys = {
        (
            r["predictor_model"],
            r["predictor_revision"],
            r["target_model"],
            r["target_revision"],
            r["signal"],
        )
        for r in got.iter_rows(named=True)
    }
    assert keys == set(want)
    for r in got.iter_rows(named=True):
        w = want[
            (
                r["predictor_model"],
                r["predictor_revision"],
                r["target_model"],
                r["target_revision"],
                r["signal"],
            )
        ]
        assert (r["n_population"], r["n_positive"]) == (w["n_population"], w["n_positive"])
        for m in METRICS:
            assert abs(r[m] - w[m]) <= TOL, (r, m, w[m])
        for b in ("roc_auc_lo", "roc_auc_hi"):
            assert (r[b] is None) == (w[b] is None)
            if w[b] is not None:
                assert abs(r[b] - w[b]) <= 1e-9
    return len(keys)


def check_binary_point(db: Path) -> int:
    """The predictor's prefix_match_len ROC point at threshold memorized_min_tokens equals
    (1 - specificity, recall) of the same pair in prediction_precision_recall."""
    pts = read(
        db,
        "SELECT c.model, c.revision, c.target_model, c.target_revision, c.fpr, c.tpr, "
        "p.fp::DOUBLE / (p.fp + p.tn) AS fpr_pr, p.recall, f.n_population, p.n_population AS n_pr "
        "FROM signal_curves AS c JOIN prediction_precision_recall AS p "
        "ON p.predictor_model = c.model AND p.predictor_revision = c.revision "
        "AND p.target_model = c.target_model AND p.target_revision = c.target_revision "
        "JOIN memorization_forecast AS f ON f.predictor_model = c.model "
        "AND f.predictor_revision = c.revision AND f.target_model = c.target_model "
        "AND f.target_revision = c.target_revision AND f.signal = c.signal "
        "WHERE c.study = 'forecast' AND c.signal = 'prefix_match_len' AND c.is_binary_predictor",
    )
    n_curves = read(
        db,
        "SELECT count(*) AS n FROM memorization_forecast WHERE signal = 'prefix_match_len'",
    )["n"][0]
    assert pts.height == n_curves > 0  # exactly one flagged point per curve
    for r in pts.iter_rows(named=True):
        assert r["n_population"] == r["n_pr"]
        assert abs(r["fpr"] - r["fpr_pr"]) <= TOL and abs(r["tpr"] - r["recall"]) <= TOL
    return pts.height


def check_curves(db: Path) -> None:
    c = read(
        db,
        "SELECT study, model, revision, target_model, target_revision, nonmember_kind, signal, "
        "count(*) AS n, min(point_index) AS lo, max(point_index) AS hi, "
        "max(fpr) AS fpr_max, max(tpr) AS tpr_max, count_if(point_index = 0 AND fpr = 0 AND tpr = 0) AS origin "
        "FROM signal_curves GROUP BY ALL",
    )
    assert c.height > 0
    assert (c["n"] <= 200).all() and (c["lo"] == 0).all() and (c["hi"] == c["n"] - 1).all()
    assert (c["fpr_max"] == 1).all() and (c["tpr_max"] == 1).all() and (c["origin"] == 1).all()
    # every point is a real ROC point: fp/tp nondecreasing along the curve
    bad = read(
        db,
        "SELECT count(*) AS n FROM (SELECT fp - lag(fp) OVER w AS dfp, tp - lag(tp) OVER w AS dtp "
        "FROM signal_curves WINDOW w AS (PARTITION BY study, model, revision, target_model, "
        "target_revision, nonmember_kind, signal ORDER BY point_index)) WHERE dfp < 0 OR dtp < 0",
    )["n"][0]
    assert bad == 0


def test_ties_membership_exact(ties_db: Path) -> None:
    n = check_membership(ties_db)
    # tie-s/tie-l/tie-rule x 2 steps x 6 signals x 2 kinds (step10 sees 2000 < 2400: both kinds)
    assert n == 3 * 2 * 6 * 2
    units = read(ties_db, "SELECT DISTINCT model FROM membership_inference")["model"].to_list()
    assert "tie-none" not in units


def test_ties_forecast_exact_and_binary_point(ties_db: Path) -> None:
    assert check_forecast(ties_db) > 0
    assert check_binary_point(ties_db) > 0
    check_curves(ties_db)


def test_ties_rates_over_what_was_seen(ties_db: Path) -> None:
    df = membership_rows(ties_db)
    df = df.with_columns(mem=(pl.col("prefix_match_len") >= 32))
    want = {
        (k[0], k[1]): (g.height, int(g["mem"].sum()))
        for k, g in df.filter(pl.col("membership") == "member").group_by(["model", "revision"])
    }
    got = read(
        ties_db,
        "SELECT model, revision, seen_exposure, n_seen, n_memorized_seen, memorization_rate_seen, "
        "memorization_rate_seen_lo AS lo, memorization_rate_seen_hi AS hi FROM memorization_rates",
    )
    for r in got.iter_rows(named=True):
        if r["model"] == "tie-none":
            assert r["n_seen"] is None and r["seen_exposure"] is None
            continue
        n, m = want[(r["model"], r["revision"])]
        assert (r["n_seen"], r["n_memorized_seen"]) == (n, m)
        assert r["memorization_rate_seen"] == pytest.approx(m / n, abs=TOL)
        # Wilson 95%, independently
        z, p = 1.959963984540054, m / n
        c = (p + z * z / (2 * n)) / (1 + z * z / n)
        h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        assert r["lo"] == pytest.approx(c - h, abs=1e-12) and r["hi"] == pytest.approx(
            c + h, abs=1e-12
        )
    # step5 of the table family: 5 x 200 = 1000 seen, minus the 10 rows without exposure
    assert got.filter(model="tie-s", revision="step5")["n_seen"][0] == 990


def test_reference_calibrated_loss(ties_db: Path, tmp_path: Path) -> None:
    """var membership_reference_unit adds ref_loss = -(loss - loss of the reference unit)."""
    import shutil

    from memwh.warehouse.build import build

    db = tmp_path / "ref.duckdb"
    shutil.copy(ties_db, db)
    assert build(
        db,
        quiet=True,
        target_path=tmp_path / "t",
        vars={"membership_reference_unit": "tie-none@step5"},
    ).success
    got = read(db, "SELECT * FROM membership_inference WHERE signal = 'ref_loss'")
    assert got.height == 3 * 2 * 2
    rows = membership_rows(db)
    ref = rows.filter(model="tie-none").select("seq_idx", ref=pl.col("loss"))
    from membership_independent import sk_metrics

    for r in got.iter_rows(named=True):
        g = rows.filter(model=r["model"], revision=r["revision"]).join(ref, on="seq_idx")
        g = g.filter(pl.col("membership").is_in(["member", r["nonmember_kind"]]))
        # in float64, as the warehouse computes it from the stored REAL values
        s = -(g["loss"].cast(pl.Float64) - g["ref"].cast(pl.Float64)).to_numpy()
        y = (g["membership"] == "member").to_numpy().astype(int)
        w = sk_metrics(y, s)
        for m in METRICS:
            assert abs(r[m] - w[m]) <= TOL


def test_pr161_forecast_of_step9000(pr161_db: Path) -> None:
    """Real data: each checkpoint's prefix_match_len forecasting step9000's memorization."""
    check_forecast(pr161_db)
    check_binary_point(pr161_db)
    got = read(
        pr161_db,
        "SELECT predictor_revision, n_population, n_positive, roc_auc, roc_auc_lo, roc_auc_hi, "
        "average_precision FROM memorization_forecast WHERE target_revision = 'step9000' "
        "AND signal = 'prefix_match_len' ORDER BY predictor_step",
    )
    assert got["predictor_revision"].to_list() == [f"step{s}000" for s in range(1, 9)]
    assert (got["n_population"] == 51_200).all() and (got["n_positive"] == 226).all()
    # later checkpoints forecast better, and all far better than chance
    auc = got["roc_auc"].to_list()
    assert auc[-1] > auc[0] > 0.6 and min(got["roc_auc_lo"]) > 0.5
    print(got)


def test_demo_membership_and_forecast(demo_db: Path) -> None:
    assert check_membership(demo_db) > 0
    assert check_forecast(demo_db) > 0
    assert check_binary_point(demo_db) > 0
    check_curves(demo_db)
    final = read(
        demo_db,
        "SELECT m.model, u.role, m.roc_auc, m.roc_auc_lo FROM membership_inference AS m "
        "JOIN units AS u USING (model, revision) WHERE u.is_final_revision "
        "AND m.signal = 'loss' AND m.nonmember_kind = 'held_out'",
    )
    # the four perturbed sizes, plus the standard model and the edited (fine-tuned) one: both
    # trained on the same data order, so their membership rows are legitimate too
    assert sorted(final["role"].to_list()) == ["edited"] + ["perturbed"] * 4 + ["standard"]
    perturbed = final.filter(final["role"] == "perturbed")
    # members separated from held-out non-members by loss, clearly above chance
    assert (perturbed["roc_auc_lo"] > 0.5).all(), final
