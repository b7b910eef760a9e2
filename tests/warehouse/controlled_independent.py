"""Independent computations (numpy + mpmath, no SQL) of the controlled-experiment marts and of
the intervals they use, for tests against the warehouse."""

from __future__ import annotations

import math
from collections.abc import Iterable

import mpmath as mp
import numpy as np
from wh_independent import wilson

Z = 1.959963984540054


def t975(df: int) -> float:
    """Student t 0.975 quantile from the regularized incomplete beta function (mpmath)."""
    mp.mp.dps = 30
    nu = mp.mpf(df)

    def tail(t):
        return mp.betainc(nu / 2, 0.5, 0, nu / (nu + t * t), regularized=True) / 2 - mp.mpf("0.025")

    return float(mp.findroot(tail, (mp.mpf("1.9"), mp.mpf(13)), solver="anderson"))


def t_interval(x: np.ndarray) -> tuple[float | None, float | None]:
    n = len(x)
    if n < 2:
        return None, None
    m, sd = float(np.mean(x)), float(np.std(x, ddof=1))
    h = t975(n - 1) * sd / math.sqrt(n)
    return m - h, m + h


def newcombe_paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Newcombe (1998) method 10: difference of paired proportions mean(a) - mean(b)."""
    n = len(a)
    n11 = int(np.sum(a & b))
    n10 = int(np.sum(a & ~b))
    n01 = int(np.sum(~a & b))
    n00 = n - n11 - n10 - n01
    p1, p2 = (n11 + n10) / n, (n11 + n01) / n
    l1, u1 = wilson(n11 + n10, n)
    l2, u2 = wilson(n11 + n01, n)
    l1, u1, l2, u2 = max(l1, 0.0), min(u1, 1.0), max(l2, 0.0), min(u2, 1.0)
    margins = (n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00)
    phi = (n11 * n00 - n10 * n01) / math.sqrt(margins) if margins > 0 else 0.0
    d = p1 - p2
    lo = d - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    hi = d + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return d, lo, hi


def pow2_bin(x: Iterable[int]) -> np.ndarray:
    x = np.asarray(list(x), dtype=np.int64)
    out = np.zeros_like(x)
    pos = x > 0
    out[pos] = 2 ** np.floor(np.log2(x[pos])).astype(np.int64)
    return out


def cornish_fisher_t975(df: float) -> float:
    """The expansion macros/intervals.sql uses above df 1000 (A&S 26.7.5)."""
    z = Z
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4
