"""The grid of a sweep: models x revisions x shards -> units; pending = no completion manifest.

A unit is one shard of one (model, revision): exactly one call of inference_jobs.score and
one Parquet + manifest pair under the output root. Completion is decided only by the
contract (memwh.core.contract.is_complete), so a unit finished by any means (another sweep, a
manual `memwh infer`) counts as done and is never rerun.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from memwh.core import contract
from memwh.core.errors import MemwhError

from .spec import SweepSpec


@dataclass(frozen=True)
class Unit:
    """One shard of one (model, revision) with everything score() needs besides the options."""

    model: str
    source: str
    revision: str
    shard: int
    num_shards: int
    seq_range: tuple[int, int] | None = None
    batch_size: int | None = None
    data: str | None = None  # None: the sweep's data
    role: str | None = None  # controlled experiments: written into the manifest
    variant_of: str | None = None
    method: str | None = None
    method_params: str | None = None

    @property
    def key(self) -> str:
        """Stable human-readable id, e.g. ``pythia-70m/step1000/part-00003-of-00016``."""
        return f"{self.model}/{self.revision}/{contract.part_stem(self.shard, self.num_shards)}"

    @property
    def file_key(self) -> str:
        """`key` usable as a single file name (task markers)."""
        return self.key.replace("/", "__")

    def outputs(self, root: str | Path) -> tuple[Path, Path]:
        """(parquet, manifest) paths of this unit under the output root."""
        return contract.shard_paths(root, self.model, self.revision, self.shard, self.num_shards)

    def is_complete(self, root: str | Path) -> bool:
        return contract.is_complete(root, self.model, self.revision, self.shard, self.num_shards)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["seq_range"] = list(self.seq_range) if self.seq_range else None
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Unit:
        sr = d.get("seq_range")
        return cls(
            model=d["model"],
            source=d["source"],
            revision=d["revision"],
            shard=int(d["shard"]),
            num_shards=int(d["num_shards"]),
            seq_range=(int(sr[0]), int(sr[1])) if sr else None,
            batch_size=d.get("batch_size"),
            data=d.get("data"),
            **{k: d.get(k) for k in contract.ROLE_FIELDS},
        )


def expand(spec: SweepSpec) -> list[Unit]:
    """All units of the grid in a stable order (model order of the spec, revision, shard)."""
    units: list[Unit] = []
    for m in spec.models:
        seq_range = m.seq_range or spec.seq_range
        for rev in m.revisions:
            try:
                contract.unit_dir(spec.out, m.label, rev)
            except contract.ContractError as e:
                raise MemwhError(f"{spec.path}: models: {e}") from None
            for shard in range(m.shards):
                units.append(
                    Unit(
                        model=m.label,
                        source=m.source,
                        revision=rev,
                        shard=shard,
                        num_shards=m.shards,
                        seq_range=seq_range,
                        batch_size=m.batch_size or spec.scoring.batch_size,
                        data=m.data,
                        role=m.role,
                        variant_of=m.variant_of,
                        method=m.method,
                        method_params=m.method_params,
                    )
                )
    return units


def pending(spec: SweepSpec, units: list[Unit] | None = None) -> list[Unit]:
    """Units without a completion manifest (the ones a submission would run)."""
    units = expand(spec) if units is None else units
    return [u for u in units if not u.is_complete(spec.out)]
