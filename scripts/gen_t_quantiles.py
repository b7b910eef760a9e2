"""Regenerate warehouse/seeds/t_quantiles.csv: Student t 0.975 quantiles for df 1..1000.

DuckDB has no inverse t CDF; the warehouse's t intervals read this seed (df <= 1000) and use
the Cornish-Fisher expansion of Abramowitz & Stegun 26.7.5 above (error < 1e-13 there; see
macros/intervals.sql). Computed with mpmath at 40 digits by inverting the regularized
incomplete beta function: P(T > t) = I_{df/(df+t^2)}(df/2, 1/2) / 2.
"""

from __future__ import annotations

from pathlib import Path

import mpmath as mp

OUT = Path(__file__).resolve().parents[1] / "warehouse" / "seeds" / "t_quantiles.csv"
MAX_DF = 1000


def t975(df: int) -> mp.mpf:
    """Upper 2.5% point of Student's t with `df` degrees of freedom."""
    nu = mp.mpf(df)

    def tail(t):
        return mp.betainc(
            nu / 2, mp.mpf(1) / 2, 0, nu / (nu + t * t), regularized=True
        ) / 2 - mp.mpf("0.025")

    return mp.findroot(tail, (mp.mpf("1.9"), mp.mpf(13)), solver="anderson")


def main() -> None:
    mp.mp.dps = 40
    lines = ["df,t975"] + [
        f"{df},{mp.nstr(t975(df), 17, strip_zeros=False)}" for df in range(1, MAX_DF + 1)
    ]
    OUT.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
