"""Unit roles of controlled experiments: standard | perturbed | reference | edited | shadow.

A unit's role, ``variant_of`` (its base unit, "model@revision"), ``method`` and JSON
``method_params`` come from its score manifests (`memwh infer --role ...`, sweep specs) or are
declared after the fact with ``declare_role`` / `memwh import role` (imports carry no manifest).
A declaration wins over the manifests. Checked on every path in: the role is one of
contract.ROLES, the base unit exists (scores ingested), and following variant_of never comes
back to the unit (no cycle). Bad input is one line; nothing is stored.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from memwh.core import contract
from memwh.core.config import resolve_db
from memwh.core.errors import MemwhError
from memwh.ingest.store import now_utc, open_raw, transaction

Unit = tuple[str, str]


@dataclass
class RoleResult:
    """What a role declaration stored."""

    model: str
    revisions: list[str]
    role: str | None
    variant_of: str | None
    db: Path
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        base = f", variant of {self.variant_of}" if self.variant_of else ""
        revs = ", ".join(self.revisions)
        return f"role {self.role or '(none)'}{base} declared for {self.model} @ {revs} -> {self.db}"


def variant_edges(con: duckdb.DuckDBPyConnection) -> dict[Unit, Unit]:
    """Stored unit -> base unit (declarations win over manifests)."""
    edges: dict[Unit, Unit] = {}
    for model, revision, variant_of in con.execute(
        "SELECT model, revision, max(variant_of) FROM raw.runs WHERE variant_of IS NOT NULL "
        "GROUP BY model, revision"
    ).fetchall():
        edges[(model, revision)] = contract.parse_unit_ref(variant_of)
    for model, revision, variant_of in con.execute(
        "SELECT model, revision, variant_of FROM raw.unit_roles"
    ).fetchall():
        if variant_of is None:
            edges.pop((model, revision), None)
        else:
            edges[(model, revision)] = contract.parse_unit_ref(variant_of)
    return edges


def stored_units(con: duckdb.DuckDBPyConnection) -> set[Unit]:
    return {
        (m, r) for m, r in con.execute("SELECT DISTINCT model, revision FROM raw.runs").fetchall()
    }


def check_graph(
    new_edges: Mapping[Unit, Unit | None], known: set[Unit], edges: Mapping[Unit, Unit]
) -> tuple[Unit, str] | None:
    """First problem of adding `new_edges` (unit -> base or None) to `edges`: (unit, message)."""
    merged = {**edges}
    for unit, base in new_edges.items():
        if base is None:
            merged.pop(unit, None)
        else:
            merged[unit] = base
    for unit, base in new_edges.items():
        if base is None:
            continue
        if base not in known:
            return unit, (
                f"variant_of {base[0]}@{base[1]} names no stored unit; ingest or import the base "
                "model's scores first"
            )
        seen = [unit]
        cur = base
        while cur in merged and cur not in seen:
            seen.append(cur)
            cur = merged[cur]
        if cur in seen:
            chain = " -> ".join(f"{m}@{r}" for m, r in [*seen[seen.index(cur) :], cur])
            return (
                unit,
                f"variant_of would make a cycle ({chain}); a base cannot be its own variant",
            )
    return None


def declare_role(
    *,
    model: str,
    revision: str | None = None,
    role: str | None = None,
    variant_of: str | None = None,
    method: str | None = None,
    method_params: str | dict | None = None,
    db: str | os.PathLike | None = None,
) -> RoleResult:
    """Declare the role of `model`@`revision` (every stored revision of the model when None).
    Replaces an earlier declaration of those units; the manifests' fields are then ignored."""
    fields = {"role": role, "variant_of": variant_of, "method": method}
    fields["method_params"] = method_params
    if role is None:
        raise MemwhError(f"--role: give one of {', '.join(contract.ROLES)}")
    con = open_raw(db)
    try:
        units = [
            r
            for (r,) in con.execute(
                "SELECT DISTINCT revision FROM raw.runs WHERE model = ? ORDER BY 1", [model]
            ).fetchall()
        ]
        if revision is not None:
            if revision not in units:
                shown = ", ".join(units[:6]) or "none"
                raise MemwhError(
                    f"{model}@{revision}: no such unit in the database (revisions of {model}: "
                    f"{shown}); ingest its scores first"
                )
            units = [revision]
        elif not units:
            raise MemwhError(f"{model}: no scores of this model in the database; ingest them first")
        try:
            norm = next(contract.check_role_fields(fields, model=model, revision=r) for r in units)
            for r in units[1:]:  # each unit may not be its own variant
                contract.check_role_fields(fields, model=model, revision=r)
        except contract.ContractError as e:
            raise MemwhError(str(e)) from None
        base = contract.parse_unit_ref(norm["variant_of"]) if norm["variant_of"] else None
        problem = check_graph(
            {(model, r): base for r in units}, stored_units(con), variant_edges(con)
        )
        if problem:
            raise MemwhError(f"{problem[0][0]}@{problem[0][1]}: {problem[1]}")
        with transaction(con):
            now = now_utc()
            con.executemany(
                "INSERT OR REPLACE INTO raw.unit_roles (model, revision, role, variant_of, method, "
                "method_params, declared_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (model, r, norm["role"], norm["variant_of"], norm["method"],
                     norm["method_params"], now)
                    for r in units
                ],
            )  # fmt: skip
    finally:
        con.close()
    return RoleResult(model, units, norm["role"], norm["variant_of"], resolve_db(db).resolve())
