"""Model facts the user states (`--family`, `--n-params`, `--tokens-per-step`,
`--sequences-per-step`, `--step`) and how they combine with what memwh knows otherwise.

They are not scoring settings (they do not change a single row), so they are not part of
RunSettings: a complete shard is reused whatever they say. They are recorded in the manifest,
where the warehouse reads them; precedence per fact: stated here > the suite's
``suite_manifest.json`` > measured (parameter count) or parsed (``stepN`` revision). What none
of these gives stays null, and the warehouse falls back to guessing from the label (and says so
in `memwh build`'s summary).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from memwh.core import contract
from memwh.core.errors import MemwhError

_FAMILY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
# Where each recorded fact came from (manifest key "metadata_source").
STATED, SUITE, MEASURED, REVISION, DERIVED = "stated", "suite", "measured", "revision", "derived"


@dataclass(frozen=True)
class ModelMeta:
    """Facts about the model and its training schedule, as stated by the user."""

    family: str | None = None
    n_params: int | None = None
    tokens_per_step: int | None = None
    sequences_per_step: int | None = None
    step: int | None = None

    def check(self, revision: str | None) -> ModelMeta:
        """One-line errors for impossible values; returns self."""
        if self.family is not None and not _FAMILY_RE.match(self.family):
            raise MemwhError(f"--family {self.family!r}: use a plain name such as pythia or gpt2")
        for name in ("n_params", "tokens_per_step", "sequences_per_step"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise MemwhError(f"--{name.replace('_', '-')} {v}: must be >= 1")
        if self.step is not None:
            if self.step < 0:
                raise MemwhError(f"--step {self.step}: must be >= 0")
            parsed = contract.parse_step(revision or "")
            if parsed is not None and parsed != self.step:
                raise MemwhError(
                    f"--step {self.step} contradicts --revision {revision}; "
                    "--step is for revisions not named stepN"
                )
        return self

    def stated(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def manifest_fields(
        self,
        revision: str,
        suite: dict[str, Any],
        n_params: int,
        non_embedding_params: int,
    ) -> dict[str, Any]:
        """The manifest's model facts: family, sizes, step, schedule, tokens_seen, train_flops,
        plus ``metadata_source`` naming where each came from (see module docstring)."""
        facts: dict[str, Any] = {
            "n_params": n_params,
            "non_embedding_params": non_embedding_params,
            "family": None,
            "step": contract.parse_step(revision),
        }
        source = {"n_params": MEASURED, "non_embedding_params": MEASURED}
        if facts["step"] is not None:
            source["step"] = REVISION
        for layer, tag in ((suite, SUITE), (self.stated(), STATED)):
            for k, v in layer.items():
                if v is not None:
                    facts[k], source[k] = v, tag
        recompute = bool({"n_params", "tokens_per_step", "step"} & set(self.stated()))
        step, tps = facts.get("step"), facts.get("tokens_per_step")
        if (recompute or facts.get("tokens_seen") is None) and step is not None and tps:
            facts["tokens_seen"], source["tokens_seen"] = step * tps, DERIVED
        seen = facts.get("tokens_seen")
        if (recompute or facts.get("train_flops") is None) and seen and facts["n_params"]:
            facts["train_flops"], source["train_flops"] = 6.0 * facts["n_params"] * seen, DERIVED
        return {**facts, "metadata_source": source}

    def differences(self, manifest: dict[str, Any]) -> list[str]:
        """Stated facts a complete shard's manifest records differently ('family None -> gpt2')."""
        return [
            f"{k} {manifest.get(k)} -> {v}"
            for k, v in self.stated().items()
            if manifest.get(k) != v
        ]
