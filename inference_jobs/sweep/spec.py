"""Sweep spec files (TOML or YAML): parse, resolve paths, validate everything up front.

A sweep is a grid models x revisions x shards scored on one dataset. All checking happens
here, before anything is written or submitted, so a typo in a spec costs a second, not a
queue wait: every problem is a MemwhError naming the key (``models[1].revisions``) and what
to do. See docs/sweeps.md and examples/pythia_sweep.toml for the format.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memwh.core import contract
from memwh.core.contract import parse_step
from memwh.core.errors import MemwhError
from memwh.core.run_settings import parse_prompt_lens

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_TIME_RE = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$|^\d+$")
_MEM_RE = re.compile(r"^\d+[KMGT]?$", re.IGNORECASE)

_DATA_SUFFIXES = {".parquet", ".jsonl", ".json", ".csv", ".arrow", ".bin", ".idx", ".npy", ".txt"}

MODES = ("fast", "generate")
MAX_REVISIONS = 100_000  # per model: Pythia has 154 checkpoints; more is a typo in a range
DTYPES = ("auto", "float32", "fp32", "float16", "fp16", "bfloat16", "bf16")


@dataclass(frozen=True)
class ScoringOptions:
    """Keyword arguments passed to inference_jobs.score for every task: the options of
    `memwh infer` that are not per model (tests/sweep checks the two lists agree)."""

    prompt_len: int = 32  # the longest when several are scored
    cont_len: int = 32
    mode: str = "fast"
    suppress_eos: bool = False
    batch_size: int | None = None
    dtype: str = "auto"
    device: str = "auto"
    save_generations: bool = False
    save_windows: bool = True
    verify: bool = False
    offset: int = 0
    keep_columns: tuple[str, ...] = ()
    windows_per_row: int = 1
    # every prompt length, ascending, when the spec lists several (spec key prompt_len takes a
    # number, a list, "32,64,128" or "25:100:25" as `memwh infer --prompt-len` does)
    prompt_lens: tuple[int, ...] = ()

    @property
    def prompt_len_arg(self) -> int | tuple[int, ...]:
        """What score() and plan_shard() take as prompt_len."""
        return self.prompt_lens or self.prompt_len

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ScoringOptions:
        """From a work list (JSON lists back to tuples; keys added later take defaults)."""
        d = dict(d)
        for k in ("keep_columns", "prompt_lens"):
            if k in d:
                d[k] = tuple(d[k] or ())
        return cls(**d)


@dataclass(frozen=True)
class ModelSpec:
    """One model of the grid: label in the warehouse, where to load it, which revisions."""

    label: str
    source: str  # local folder (absolute, resolved) or hub id
    revisions: tuple[str, ...]
    is_local: bool
    n_params: int | None = None  # model facts recorded in manifests (inference_jobs.metadata)
    family: str | None = None
    tokens_per_step: int | None = None
    sequences_per_step: int | None = None
    steps: tuple[tuple[str, int], ...] = ()  # (revision, step) for revisions not named stepN
    shards: int = 1
    seq_range: tuple[int, int] | None = None
    batch_size: int | None = None
    data: str | None = None  # overrides the sweep's data (e.g. deduped Pile for deduped models)
    # controlled experiments (contract.ROLES); method_params is canonical JSON
    role: str | None = None
    variant_of: str | None = None
    method: str | None = None
    method_params: str | None = None


@dataclass(frozen=True)
class SlurmResources:
    """What goes into the #SBATCH header and the setup part of the array script."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    gpus: int | None = None
    cpus: int | None = None
    mem: str | None = None
    time: str | None = None
    job_name: str | None = None
    max_parallel: int | None = None
    signal_seconds: int = 120
    requeue: bool = True
    extra: tuple[str, ...] = ()
    setup: tuple[str, ...] = ()
    memwh: str | None = None  # command that runs memwh on the nodes; default: this install's


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: everything needed to enumerate and run its tasks."""

    name: str
    path: Path
    out: Path
    data: str
    models: tuple[ModelSpec, ...]
    scoring: ScoringOptions
    slurm: SlurmResources
    seq_range: tuple[int, int] | None = None
    shards: int = 1
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def sweep_dir(self) -> Path:
        """Where work lists, sbatch scripts, logs and task markers of this sweep live."""
        return self.out / "sweeps" / self.name


_TOP_KEYS = {"name", "out", "data", "seq_range", "shards", "scoring", "slurm", "models"}
_MODEL_KEYS = {
    "label",
    "source",
    "revisions",
    "params",  # older name of n_params
    "n_params",
    "family",
    "tokens_per_step",
    "sequences_per_step",
    "steps",
    "shards",
    "seq_range",
    "batch_size",
    "data",
    "role",
    "variant_of",
    "method",
    "method_params",
}
_SCORING_KEYS = {f for f in ScoringOptions.__dataclass_fields__} - {"prompt_lens"}
_SLURM_KEYS = {f for f in SlurmResources.__dataclass_fields__}


class _Checker:
    """Small helpers that raise MemwhError naming the spec file and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, msg: str) -> MemwhError:
        return MemwhError(f"{self.path}: {key}: {msg}")

    def table(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table/mapping, got {type(value).__name__}")
        return value

    def known_keys(self, d: dict[str, Any], allowed: set[str], where: str) -> None:
        unknown = sorted(set(d) - allowed)
        if unknown:
            prefix = f"{where}." if where else ""
            raise self.fail(
                f"{prefix}{unknown[0]}",
                f"unknown key; allowed keys here: {', '.join(sorted(allowed))}",
            )

    def string(self, value: Any, key: str, *, pattern: re.Pattern[str] | None = None) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        if pattern is not None and not pattern.match(value):
            raise self.fail(key, f"{value!r} is not valid here (expected {pattern.pattern})")
        return value

    def integer(self, value: Any, key: str, *, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, got {value!r}")
        if value < minimum:
            raise self.fail(key, f"must be >= {minimum}, got {value}")
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}")
        return value

    def str_list(self, value: Any, key: str, *, allow_empty: bool = True) -> tuple[str, ...]:
        if isinstance(value, str) or not isinstance(value, list):
            raise self.fail(key, f"must be a list of strings, got {value!r}")
        if not value and not allow_empty:
            raise self.fail(key, "is empty: list at least one entry")
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise self.fail(f"{key}[{i}]", f"must be a non-empty string, got {item!r}")
        return tuple(value)

    def seq_range(self, value: Any, key: str) -> tuple[int, int]:
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            raise self.fail(key, f"must be [start, end] (two integers), got {value!r}")
        start, end = value
        if start < 0 or end <= start:
            raise self.fail(key, f"needs 0 <= start < end, got [{start}, {end}]")
        return start, end


def _read_raw(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise MemwhError(f"{path}: sweep spec not found; pass a .toml or .yaml file")
    suffix = path.suffix.lower()
    try:
        text = path.read_text()
    except OSError as e:
        raise MemwhError(f"{path}: cannot read sweep spec ({e.strerror})") from None
    if suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise MemwhError(f"{path}: invalid TOML ({e})") from None
    elif suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            msg = " ".join(str(e).split())
            raise MemwhError(f"{path}: invalid YAML ({msg})") from None
    else:
        raise MemwhError(f"{path}: unknown spec format {suffix!r}; use .toml, .yaml or .yml")
    if not isinstance(data, dict):
        raise MemwhError(f"{path}: a sweep spec must be a mapping at the top level")
    return data


def _looks_local(source: str, base: Path) -> bool:
    """Local folder vs hub id, as score() decides: it exists, or it has path syntax
    (leading . / ~, or more than one slash); `owner/name` that does not exist is a hub id."""
    if source.startswith((".", "/", "~")) or source.count("/") > 1:
        return True
    return (base / source).exists() or not _HUB_ID_RE.match(source)


def _resolve(source: str, base: Path) -> Path:
    p = Path(source).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _check_data(data: str, base: Path, ck: _Checker, key: str = "data") -> str:
    """Local data must exist (a .bin/.idx pair may be named by its prefix); else a hub name."""
    if not _looks_local(data, base) and Path(data).suffix.lower() not in _DATA_SUFFIXES:
        return data
    p = _resolve(data, base)
    candidates = [p, p.with_name(p.name + ".bin"), p.with_name(p.name + ".idx")]
    if not any(c.exists() for c in candidates):
        raise ck.fail(key, f"{p} does not exist; give a token Parquet, a dataset, or a .bin/.idx")
    return str(p)


_REV_RANGE_KEYS = {"prefix", "start", "stop", "step"}


def _parse_revisions(value: Any, key: str, ck: _Checker) -> tuple[str, ...]:
    """A list of revision names, or {start, stop, step[, prefix="step"]} (stop inclusive):
    `{start = 1000, stop = 143000, step = 1000}` -> step1000 ... step143000."""
    if isinstance(value, dict):
        ck.known_keys(value, _REV_RANGE_KEYS, key)
        for k in ("start", "stop", "step"):
            if k not in value:
                raise ck.fail(f"{key}.{k}", "missing: a revision range needs start, stop and step")
        start = ck.integer(value["start"], f"{key}.start", minimum=0)
        stop = ck.integer(value["stop"], f"{key}.stop", minimum=start)
        step = ck.integer(value["step"], f"{key}.step", minimum=1)
        prefix = ck.string(value.get("prefix", "step"), f"{key}.prefix", pattern=_NAME_RE)
        n = (stop - start) // step + 1
        if n > MAX_REVISIONS:
            raise ck.fail(
                key,
                f"expands to {n:,} revisions (more than {MAX_REVISIONS:,}); check start, stop "
                "and step (stop is inclusive), or split the sweep",
            )
        return tuple(f"{prefix}{n}" for n in range(start, stop + 1, step))
    return ck.str_list(value, key, allow_empty=False)


def _parse_steps(
    value: Any, revisions: tuple[str, ...], key: str, ck: _Checker
) -> tuple[tuple[str, int], ...]:
    """{revision = step} for revisions not named stepN (a stepN revision's step is N)."""
    table = ck.table(value, key)
    out = []
    for rev, step in table.items():
        if rev not in revisions:
            raise ck.fail(f"{key}.{rev}", f"{rev!r} is not one of this model's revisions")
        n = ck.integer(step, f"{key}.{rev}", minimum=0)
        named = parse_step(rev)
        if named is not None and named != n:
            raise ck.fail(f"{key}.{rev}", f"contradicts the revision name ({rev} is step {named})")
        out.append((rev, n))
    return tuple(out)


def _parse_model(i: int, raw: Any, base: Path, ck: _Checker, default_shards: int) -> ModelSpec:
    key = f"models[{i}]"
    m = ck.table(raw, key)
    ck.known_keys(m, _MODEL_KEYS, key)
    if "label" not in m:
        raise ck.fail(f"{key}.label", "missing: give the model's name in the warehouse")
    label = ck.string(m["label"], f"{key}.label", pattern=_NAME_RE)
    if "source" not in m:
        raise ck.fail(f"{key}.source", "missing: a local model folder or a hub id")
    source = ck.string(m["source"], f"{key}.source")
    if "revisions" not in m:
        raise ck.fail(f"{key}.revisions", 'missing: list revisions, e.g. ["step143000"]')
    revisions = _parse_revisions(m["revisions"], f"{key}.revisions", ck)
    for j, rev in enumerate(revisions):
        ck.string(rev, f"{key}.revisions[{j}]", pattern=_NAME_RE)
    seen: set[str] = set()  # linear: a 100k-revision grid is checked in milliseconds
    for rev in revisions:
        if rev in seen:
            raise ck.fail(f"{key}.revisions", f"lists {rev!r} twice")
        seen.add(rev)
    is_local = _looks_local(source, base)
    if is_local:
        p = _resolve(source, base)
        if not p.is_dir():
            raise ck.fail(f"{key}.source", f"model folder {p} does not exist")
        ckpts = sorted(d.name for d in p.iterdir() if d.is_dir() and (d / "config.json").is_file())
        have = set(ckpts)
        single = (p / "config.json").is_file()
        for j, rev in enumerate(revisions):
            if rev in have or (single and rev in ("main", p.name)):
                continue
            if ckpts:
                shown = ", ".join(ckpts[:6]) + (", ..." if len(ckpts) > 6 else "")
                msg = f"{rev!r} not found in {p} (checkpoints: {shown})"
            elif single:
                msg = f'{p} is a single checkpoint: use revisions = ["main"]'
            else:
                msg = f"{p} has no config.json and no checkpoint subfolders"
            raise ck.fail(f"{key}.revisions[{j}]", msg)
        source = str(p)
    if "params" in m and "n_params" in m:
        raise ck.fail(f"{key}.params", "give n_params only (params is its older name)")
    n_params_key = "params" if "params" in m else "n_params"
    facts: dict[str, Any] = {}
    for k, name in (
        (n_params_key, "n_params"),
        ("tokens_per_step", "tokens_per_step"),
        ("sequences_per_step", "sequences_per_step"),
    ):
        if m.get(k) is not None:
            facts[name] = ck.integer(m[k], f"{key}.{k}", minimum=1)
    if m.get("family") is not None:
        facts["family"] = ck.string(m["family"], f"{key}.family", pattern=_NAME_RE)
    steps = _parse_steps(m.get("steps"), revisions, f"{key}.steps", ck) if "steps" in m else ()
    shards = ck.integer(m.get("shards", default_shards), f"{key}.shards", minimum=1)
    seq_range = ck.seq_range(m["seq_range"], f"{key}.seq_range") if "seq_range" in m else None
    data = (
        _check_data(ck.string(m["data"], f"{key}.data"), base, ck, f"{key}.data")
        if "data" in m
        else None
    )
    batch_size = None
    if m.get("batch_size") is not None:
        batch_size = ck.integer(m["batch_size"], f"{key}.batch_size", minimum=1)
    roles = {k: m.get(k) for k in contract.ROLE_FIELDS}
    try:
        roles = contract.check_role_fields(roles, model=label, revision=None)
        for rev in revisions if roles["variant_of"] else ():
            contract.check_role_fields(roles, model=label, revision=rev)
    except contract.ContractError as e:
        keys = sorted(contract.ROLE_FIELDS, key=len, reverse=True)  # method_params before method
        field_name = next((k for k in keys if str(e).startswith(k)), "role")
        raise ck.fail(f"{key}.{field_name}", str(e)) from None
    return ModelSpec(
        label=label,
        source=source,
        revisions=revisions,
        is_local=is_local,
        **facts,
        steps=steps,
        shards=shards,
        seq_range=seq_range,
        batch_size=batch_size,
        data=data,
        **roles,
    )


def _parse_scoring(raw: Any, ck: _Checker) -> ScoringOptions:
    s = ck.table(raw, "scoring")
    ck.known_keys(s, _SCORING_KEYS, "scoring")
    kw: dict[str, Any] = {}
    if "prompt_len" in s:
        v = s["prompt_len"]
        if isinstance(v, bool) or not isinstance(v, int | str | list):
            raise ck.fail("scoring.prompt_len", f"must be a number, a list or a string, got {v!r}")
        try:
            lens = parse_prompt_lens(v)
        except (ValueError, TypeError) as e:
            raise ck.fail("scoring.prompt_len", str(e).removeprefix("--prompt-len ")) from None
        kw["prompt_len"] = lens[-1]
        kw["prompt_lens"] = lens if len(lens) > 1 else ()
    if "cont_len" in s:
        kw["cont_len"] = ck.integer(s["cont_len"], "scoring.cont_len", minimum=1)
    if "offset" in s:
        kw["offset"] = ck.integer(s["offset"], "scoring.offset", minimum=0)
    if "windows_per_row" in s:
        kw["windows_per_row"] = ck.integer(
            s["windows_per_row"], "scoring.windows_per_row", minimum=1
        )
    if "keep_columns" in s:
        kw["keep_columns"] = tuple(
            dict.fromkeys(c.strip() for c in ck.str_list(s["keep_columns"], "scoring.keep_columns"))
        )
    if s.get("batch_size") is not None:
        kw["batch_size"] = ck.integer(s["batch_size"], "scoring.batch_size", minimum=1)
    if "mode" in s:
        mode = ck.string(s["mode"], "scoring.mode")
        if mode not in MODES:
            raise ck.fail("scoring.mode", f"{mode!r} unknown; use one of {', '.join(MODES)}")
        kw["mode"] = mode
    if "dtype" in s:
        dtype = ck.string(s["dtype"], "scoring.dtype")
        if dtype not in DTYPES:
            raise ck.fail("scoring.dtype", f"{dtype!r} unknown; use one of {', '.join(DTYPES)}")
        kw["dtype"] = dtype
    if "device" in s:
        kw["device"] = ck.string(s["device"], "scoring.device")
    for k in ("suppress_eos", "save_generations", "save_windows", "verify"):
        if k in s:
            kw[k] = ck.boolean(s[k], f"scoring.{k}")
    return ScoringOptions(**kw)


def _parse_slurm(raw: Any, ck: _Checker) -> SlurmResources:
    s = ck.table(raw, "slurm")
    ck.known_keys(s, _SLURM_KEYS, "slurm")
    kw: dict[str, Any] = {}
    for k in ("partition", "account", "qos", "job_name", "memwh"):
        if s.get(k) is not None:
            kw[k] = ck.string(s[k], f"slurm.{k}")
    for k in ("gpus", "cpus", "max_parallel"):
        if s.get(k) is not None:
            kw[k] = ck.integer(s[k], f"slurm.{k}", minimum=0 if k == "gpus" else 1)
    if "signal_seconds" in s:
        kw["signal_seconds"] = ck.integer(s["signal_seconds"], "slurm.signal_seconds", minimum=0)
    if "requeue" in s:
        kw["requeue"] = ck.boolean(s["requeue"], "slurm.requeue")
    if s.get("mem") is not None:
        mem = str(s["mem"]) if isinstance(s["mem"], int) else s["mem"]
        kw["mem"] = ck.string(mem, "slurm.mem", pattern=_MEM_RE)
    if s.get("time") is not None:
        kw["time"] = ck.string(s["time"], "slurm.time", pattern=_TIME_RE)
    if "extra" in s:
        extra = ck.str_list(s["extra"], "slurm.extra")
        cleaned = []
        for i, line in enumerate(extra):
            line = line.strip()
            if line.startswith("#SBATCH"):
                line = line[len("#SBATCH") :].strip()
            if not line.startswith("-"):
                raise ck.fail(
                    f"slurm.extra[{i}]",
                    f"{line!r} is not an sbatch option (e.g. --constraint=a100)",
                )
            if line.split("=")[0].split()[0] in ("--array", "-a"):
                raise ck.fail(f"slurm.extra[{i}]", "--array is set by memwh from the pending tasks")
            cleaned.append(line)
        kw["extra"] = tuple(cleaned)
    if "setup" in s:
        kw["setup"] = ck.str_list(s["setup"], "slurm.setup")
    return SlurmResources(**kw)


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec; relative paths are relative to the spec's folder."""
    path = Path(path).expanduser().resolve()
    raw = _read_raw(path)
    ck = _Checker(path)
    base = path.parent
    ck.known_keys(raw, _TOP_KEYS, "")

    name = ck.string(raw.get("name", path.stem), "name", pattern=_NAME_RE)
    if "out" not in raw:
        raise ck.fail("out", "missing: the output root (scores/ and sweeps/ go there)")
    out = _resolve(ck.string(raw["out"], "out"), base)
    if out.exists() and not out.is_dir():
        raise ck.fail("out", f"{out} exists and is not a folder")
    data = _check_data(ck.string(raw["data"], "data"), base, ck) if "data" in raw else ""
    seq_range = ck.seq_range(raw["seq_range"], "seq_range") if "seq_range" in raw else None
    shards = ck.integer(raw.get("shards", 1), "shards", minimum=1)

    models_raw = raw.get("models")
    if models_raw is None:
        raise ck.fail("models", "missing: add at least one [[models]] entry")
    if not isinstance(models_raw, list) or not models_raw:
        raise ck.fail("models", "must be a non-empty list of model entries")
    models = tuple(_parse_model(i, m, base, ck, shards) for i, m in enumerate(models_raw))
    labels = [m.label for m in models]
    for i, label in enumerate(labels):
        if labels.index(label) != i:
            raise ck.fail(
                f"models[{i}].label", f"{label!r} is used by models[{labels.index(label)}] too"
            )

    if not data:
        for i, m in enumerate(models):
            if m.data is None:
                raise ck.fail("data", f"missing: the dataset to score (or set models[{i}].data)")
    scoring = _parse_scoring(raw.get("scoring", {}), ck)
    slurm = _parse_slurm(raw.get("slurm", {}), ck)
    _check_against_data(models, data, seq_range, scoring, ck)
    return SweepSpec(
        name=name,
        path=path,
        out=out,
        data=data,
        models=models,
        scoring=scoring,
        slurm=slurm,
        seq_range=seq_range,
        shards=shards,
        raw=raw,
    )


def _check_against_data(
    models: tuple[ModelSpec, ...],
    data: str,
    seq_range: tuple[int, int] | None,
    scoring: ScoringOptions,
    ck: _Checker,
) -> None:
    """Each model's sequence range must lie inside its data and hold sequences, and the
    sequences must be long enough for prompt_len + cont_len: else every task would fail on
    the cluster. Token data (Parquet tokens, memmaps, Megatron) is opened here, once per
    file; text data needs the model's tokenizer and is checked when a task starts."""
    from memwh.inference_jobs import data as data_mod

    sources: dict[str, Any] = {}
    need = scoring.prompt_len + scoring.cont_len
    # with an offset, rows too short for the window are skipped and counted, not an error
    check_fit = scoring.offset == 0
    for i, m in enumerate(models):
        d = m.data or data
        data_key = f"models[{i}].data" if m.data else "data"
        if d not in sources:
            try:
                sources[d] = data_mod.open_source(d, None)
            except MemwhError as e:
                if "needs the model's tokenizer" in str(e):
                    sources[d] = None
                    continue
                raise ck.fail(data_key, str(e)) from None
        src = sources[d]
        if src is None:
            continue
        if scoring.windows_per_row > 1:  # the sequences are the windows: seq_idx = row * W + w
            src = data_mod.RowWindows(src, scoring.windows_per_row, need)
        if scoring.keep_columns:
            try:
                data_mod.check_keep_columns(src, scoring.keep_columns)
            except MemwhError as e:
                raise ck.fail("scoring.keep_columns", str(e)) from None
        rng = m.seq_range or seq_range
        rng_key = f"models[{i}].seq_range" if m.seq_range else "seq_range"
        lo, hi = src.index_range()
        if rng and (rng[0] < lo or rng[1] > hi):
            raise ck.fail(
                rng_key,
                f"[{rng[0]}, {rng[1]}] is outside the data ({src.description} holds "
                f"sequence indices {lo}:{hi}); pick a range inside it",
            )
        start, end = rng or (lo, hi)
        # a first window, so a dense 146M-row source never materialises all its indices
        idx = src.indices_in(start, min(end, start + 1_000_000))
        if not len(idx):
            idx = src.indices_in(start, end)
        if not len(idx):
            raise ck.fail(
                rng_key,
                f"[{start}, {end}] holds no sequence of {src.description}; nothing to score",
            )
        try:
            if check_fit:
                src.read(idx[:1], need)
        except MemwhError as e:
            raise ck.fail(
                "scoring.prompt_len", f"prompt_len + cont_len = {need} does not fit: {e}"
            ) from None
