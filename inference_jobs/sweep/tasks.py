"""The grid of a sweep: models x revisions x shards -> tasks; pending = not done.

A task is one shard of one (model, revision): exactly one call of inference_jobs.score and
one Parquet + manifest pair under the output root. Completion follows `memwh infer`'s rule
(`task_completion`): the manifest exists and its settings (memwh.core.run_settings) equal
what the spec asks for. A shard finished by any means (another sweep, a manual `memwh
infer`) with the same settings counts as done and is never rerun; one made with other
settings is a conflict, never reused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from memwh.core import contract
from memwh.core.errors import MemwhError
from memwh.core.run_settings import Completion

from ..metadata import ModelMeta
from ..models import dtype_name
from ..plan import plan_shard
from .spec import ScoringOptions, SweepSpec

# What a sweep user can do about a shard made with other settings (infer says --name/--out/--force).
CONFLICT_WAY_OUT = (
    "give the model another label or the sweep another `out` in the spec, "
    "or replace the shard with `memwh infer ... --force` (see `memwh status`)"
)

_META_FIELDS = ("family", "n_params", "tokens_per_step", "sequences_per_step", "step")


@dataclass(frozen=True)
class Task:
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
    # model facts recorded in the manifest (inference_jobs.metadata.ModelMeta)
    family: str | None = None
    n_params: int | None = None
    tokens_per_step: int | None = None
    sequences_per_step: int | None = None
    step: int | None = None

    @property
    def key(self) -> str:
        """Stable human-readable id, e.g. ``pythia-70m/step1000/part-00003-of-00016``."""
        return f"{self.model}/{self.revision}/{contract.part_stem(self.shard, self.num_shards)}"

    @property
    def file_key(self) -> str:
        """`key` usable as a single file name (task markers)."""
        return self.key.replace("/", "__")

    def outputs(self, root: str | Path) -> tuple[Path, Path]:
        """(parquet, manifest) paths of this task under the output root."""
        return contract.shard_paths(root, self.model, self.revision, self.shard, self.num_shards)

    def is_complete(self, root: str | Path) -> bool:
        return contract.is_complete(root, self.model, self.revision, self.shard, self.num_shards)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["seq_range"] = list(self.seq_range) if self.seq_range else None
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Task:
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
            **{k: d.get(k) for k in _META_FIELDS},
        )

    def meta(self) -> ModelMeta:
        return ModelMeta(**{k: getattr(self, k) for k in _META_FIELDS})


def expand(spec: SweepSpec) -> list[Task]:
    """All tasks of the grid in a stable order (model order of the spec, revision, shard)."""
    tasks: list[Task] = []
    for m in spec.models:
        seq_range = m.seq_range or spec.seq_range
        for rev in m.revisions:
            try:
                contract.unit_dir(spec.out, m.label, rev)
            except contract.ContractError as e:
                raise MemwhError(f"{spec.path}: models: {e}") from None
            for shard in range(m.shards):
                tasks.append(
                    Task(
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
                        family=m.family,
                        n_params=m.n_params,
                        tokens_per_step=m.tokens_per_step,
                        sequences_per_step=m.sequences_per_step,
                        step=dict(m.steps).get(rev),
                    )
                )
    return tasks


def task_completion(
    task: Task,
    out: str | Path,
    data: str,
    scoring: ScoringOptions,
    sources: dict | None = None,
) -> Completion:
    """missing / done / conflict of a task's shard, by the rule `memwh infer` applies.

    Without a manifest nothing else is read; with one, the request is built like score()
    builds it (model resolved, data fingerprinted) except that dtype ``auto`` is not compared
    (the device decides it on the node)."""
    if not task.is_complete(out):
        return Completion("missing", task.outputs(out)[1])
    plan = plan_shard(
        task.source, task.data or data, out, revision=task.revision, name=task.model,
        prompt_len=scoring.prompt_len_arg, cont_len=scoring.cont_len, mode=scoring.mode,
        suppress_eos=scoring.suppress_eos, dtype=dtype_name(scoring.dtype),
        seq_range=task.seq_range, shard=task.shard, num_shards=task.num_shards,
        save_generations=scoring.save_generations, verify=scoring.verify,
        offset=scoring.offset, keep_columns=scoring.keep_columns,
        windows_per_row=scoring.windows_per_row, sources=sources,
    )  # fmt: skip
    return plan.completion()


def pending(spec: SweepSpec, tasks: list[Task] | None = None) -> list[Task]:
    """Tasks whose shard is not done with the spec's settings (missing or in conflict)."""
    tasks = expand(spec) if tasks is None else tasks
    sources: dict = {}
    return [
        u
        for u in tasks
        if task_completion(u, spec.out, spec.data, spec.scoring, sources).state != "done"
    ]
