"""Fast tests: spec validation, the grid, work lists, sbatch script text, dry-run, status."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sweep_helpers import memwh

from memwh.core import contract
from memwh.core.errors import MemwhError
from memwh.inference_jobs.plan import plan_shard
from memwh.inference_jobs.sweep import expand, load_spec, pending, sweep_status
from memwh.inference_jobs.sweep.slurm import array_chunks, render_script
from memwh.inference_jobs.sweep.worklist import load_worklist, write_worklist


@pytest.fixture
def fake_models(tmp_path: Path) -> Path:
    """Folders shaped like a local suite (config.json per checkpoint); enough for validation."""
    for m in ("m1", "m2"):
        for step in ("step1", "step2", "step3"):
            d = tmp_path / "suite" / m / step
            d.mkdir(parents=True)
            (d / "config.json").write_text("{}")
    write_tokens(tmp_path / "tokens.parquet", 1000, 64)
    return tmp_path


def write_tokens(path: Path, n: int, length: int) -> None:
    """A real token table (the spec is checked against its index range and lengths)."""
    pq.write_table(
        pa.table(
            {
                "seq_idx": pa.array(range(n), pa.int64()),
                "tokens": pa.array([[7] * length] * n, pa.list_(pa.int32())),
            }
        ),
        path,
    )


def _complete_by_hand(spec, task, **other) -> None:
    """Write the shard as any scorer would: Parquet + manifest with the spec's settings (or
    `other` ones), like a `memwh infer` run finished outside the sweep."""
    plan = plan_shard(
        task.source, spec.data, spec.out, revision=task.revision, name=task.model,
        dtype="float32", seq_range=task.seq_range, shard=task.shard,
        num_shards=task.num_shards,
    )  # fmt: skip
    settings = plan.settings.with_resolved(**other)
    pq_path, man_path = task.outputs(spec.out)
    pq_path.parent.mkdir(parents=True, exist_ok=True)
    pq_path.write_bytes(b"x")
    now = "2026-01-01T00:00:00+00:00"
    contract.write_manifest(
        man_path,
        {
            **settings.manifest_fields(), "contract_version": 1, "run_id": "r", "model_path": "m",
            "n_rows": 0, "parquet_file": pq_path.name, "parquet_sha256": "", "started_at": now,
            "finished_at": now,
        },
    )  # fmt: skip


GOOD = """
name = "grid"
out = "out"
data = "tokens.parquet"
shards = 3
seq_range = [0, 900]

[scoring]
mode = "fast"
batch_size = 64
dtype = "float32"

[slurm]
partition = "gpu"
account = "proj42"
qos = "normal"
gpus = 1
cpus = 4
mem = "16G"
time = "02:00:00"
max_parallel = 8
extra = ["--constraint=a100", "#SBATCH --exclusive"]
setup = ["module load cuda/12.1", "source ~/venvs/memwh/bin/activate"]
memwh = "memwh"

[[models]]
label = "m1"
source = "suite/m1"
revisions = ["step1", "step3"]
params = 1000

[[models]]
label = "m2"
source = "suite/m2"
revisions = ["step2"]
shards = 2
"""


def _spec(tmp: Path, text: str, name: str = "s.toml") -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def test_good_spec_expands_to_the_grid(fake_models: Path) -> None:
    spec = load_spec(_spec(fake_models, GOOD))
    assert spec.out == fake_models / "out"
    assert spec.slurm.extra == ("--constraint=a100", "--exclusive")
    tasks = expand(spec)
    assert len(tasks) == 2 * 3 + 1 * 2
    assert tasks[0].key == "m1/step1/part-00000-of-00003"
    assert tasks[-1].key == "m2/step2/part-00001-of-00002"
    assert all(u.seq_range == (0, 900) and u.batch_size == 64 for u in tasks)
    # A task completed by anyone (here: by hand) is no longer pending.
    u = tasks[1]
    _complete_by_hand(spec, u)
    assert u not in pending(spec) and len(pending(spec)) == len(tasks) - 1
    # ... but a shard made with other settings is never taken as done.
    _complete_by_hand(spec, u, prompt_len=16)
    assert u in pending(spec)


def test_yaml_spec_is_equivalent(fake_models: Path) -> None:
    yaml_text = """
name: grid
out: out
data: tokens.parquet
shards: 3
seq_range: [0, 900]
scoring: {mode: fast, batch_size: 64, dtype: float32}
models:
  - {label: m1, source: suite/m1, revisions: [step1, step3], params: 1000}
  - {label: m2, source: suite/m2, revisions: [step2], shards: 2}
"""
    a = expand(load_spec(_spec(fake_models, GOOD)))
    b = expand(load_spec(_spec(fake_models, yaml_text, "s.yaml")))
    assert a == b


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('name = "grid"', 'name = "grid"\nshardz = 2', "shardz: unknown key"),
        ('qos = "normal"', 'qos = "normal"\npartitions = "x"', "slurm.partitions: unknown key"),
        ("params = 1000", 'params = 1000\nrevision = "x"', "models[0].revision: unknown key"),
        ('source = "suite/m1"', 'source = "./suite/missing"', "models[0].source: model folder"),
        ("shards = 3", "shards = 0", "shards: must be >= 1"),
        ("shards = 2", "shards = 0", "models[1].shards: must be >= 1"),
        ('revisions = ["step2"]', "revisions = []", "models[1].revisions: is empty"),
        (
            'revisions = ["step1", "step3"]',
            'revisions = ["step1", "step9"]',
            "models[0].revisions[1]: 'step9' not found",
        ),
        ('data = "tokens.parquet"', 'data = "nope.parquet"', "data: "),
        ('mode = "fast"', 'mode = "greedy"', "scoring.mode: 'greedy' unknown"),
        ('time = "02:00:00"', 'time = "two hours"', "slurm.time:"),
        ('label = "m2"', 'label = "m1"', "models[1].label: 'm1' is used by models[0]"),
        ("seq_range = [0, 900]", "seq_range = [900, 10]", "seq_range: needs 0 <= start < end"),
        ('"--constraint=a100"', '"--array=0-3"', "slurm.extra[0]: --array is set by memwh"),
        ("shards = 2", 'shards = 2\nrole = "ctrl"', "models[1].role: role 'ctrl' is unknown"),
        (
            "shards = 2",
            'shards = 2\nrole = "edited"',
            "models[1].role: role edited needs variant_of",
        ),
        (
            "shards = 2",
            'shards = 2\nvariant_of = "m1"',
            "models[1].variant_of: variant_of 'm1': name the base unit as MODEL@REVISION",
        ),
        (
            "shards = 2",
            'shards = 2\nrole = "edited"\nvariant_of = "m1@s"\nmethod_params = [1]',
            "models[1].method_params: method_params must be a JSON object",
        ),
    ],
)
def test_bad_specs_name_the_key(fake_models: Path, old: str, new: str, key: str) -> None:
    assert old in GOOD
    path = _spec(fake_models, GOOD.replace(old, new, 1))
    with pytest.raises(MemwhError) as e:
        load_spec(path)
    msg = str(e.value)
    assert key in msg and str(path) in msg and "\n" not in msg


def test_missing_sections_and_bad_syntax(fake_models: Path) -> None:
    with pytest.raises(MemwhError, match="models: missing"):
        load_spec(_spec(fake_models, 'out = "o"\ndata = "tokens.parquet"\n'))
    with pytest.raises(MemwhError, match="invalid TOML"):
        load_spec(_spec(fake_models, "out = \n"))
    with pytest.raises(MemwhError, match="invalid YAML"):
        load_spec(_spec(fake_models, "out: [\n", "s.yaml"))
    with pytest.raises(MemwhError, match="not found"):
        load_spec(fake_models / "none.toml")


def test_hub_ids_are_not_checked_locally(fake_models: Path) -> None:
    text = GOOD.replace('source = "suite/m1"', 'source = "EleutherAI/pythia-70m"')
    spec = load_spec(_spec(fake_models, text))
    assert spec.models[0].source == "EleutherAI/pythia-70m" and not spec.models[0].is_local


def test_worklists_are_numbered_and_never_shift(fake_models: Path) -> None:
    spec = load_spec(_spec(fake_models, GOOD))
    tasks = expand(spec)
    wl1 = write_worklist(spec, tasks, "slurm")
    wl2 = write_worklist(spec, tasks[3:5], "slurm")
    assert (wl1.submission, wl2.submission) == (1, 2)
    assert wl1.path.name == "worklist-0001.json" and wl2.path.name == "worklist-0002.json"
    # The first list is untouched by the second submission: task ids keep their tasks.
    again = load_worklist(wl1.path)
    assert [again.task(i) for i in range(len(tasks))] == tasks
    assert load_worklist(wl2.path).task(0) == tasks[3]
    with pytest.raises(MemwhError, match="task id 2 is outside"):
        wl2.task(2)


def test_sbatch_script_and_array_splitting(fake_models: Path, tmp_path: Path) -> None:
    spec = load_spec(_spec(fake_models, GOOD))
    wl = tmp_path / "worklist-0001.json"
    text = render_script(
        spec, wl, 7, tmp_path / "logs", max_parallel=3, max_size=1001, command=["memwh"]
    )
    for line in (
        "#SBATCH --array=0-6%3",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=proj42",
        "#SBATCH --qos=normal",
        "#SBATCH --gpus=1",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=16G",
        "#SBATCH --time=02:00:00",
        "#SBATCH --signal=B:USR1@120",
        "#SBATCH --requeue",
        "#SBATCH --open-mode=append",
        "#SBATCH --constraint=a100",
        "#SBATCH --exclusive",
        f"#SBATCH --output={tmp_path / 'logs'}/%A_%a.log",
        "module load cuda/12.1",
        'scontrol requeue "$SLURM_JOB_ID"',
        'memwh) sweep run-task "$WORKLIST" "$TASK_ID"',
    ):
        assert line.split(")")[-1].strip() in text, line
    # All #SBATCH lines come before the first command (sbatch stops reading them there).
    lines = text.splitlines()
    first_cmd = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    assert not any(line.startswith("#SBATCH") for line in lines[first_cmd:])
    # Valid bash.
    script = tmp_path / "s.sbatch"
    script.write_text(text)
    subprocess.run(["bash", "-n", str(script)], check=True)
    # MaxArraySize: indexes must stay below it -> chunks with offsets.
    assert array_chunks(7, 3) == [(0, 3), (3, 3), (6, 1)]
    assert array_chunks(2500, 1001) == [(0, 1001), (1001, 1001), (2002, 498)]
    split = render_script(spec, wl, 7, tmp_path / "logs", max_size=3, command=["memwh"])
    assert "#SBATCH --array=0-2%8" in split and "MEMWH_TASK_OFFSET" in split


def test_dry_run_prints_script_and_units_and_writes_nothing(fake_models: Path) -> None:
    path = _spec(fake_models, GOOD)
    proc = memwh("submit", str(path), "--dry-run", timeout=60)
    assert proc.stdout.startswith("# ") and "#!/bin/bash" in proc.stdout
    assert "#SBATCH --array=0-7%8" in proc.stdout
    assert "m2/step2/part-00001-of-00002" in proc.stdout
    assert not (fake_models / "out").exists()
    local = memwh("submit", str(path), "--dry-run", "--executor", "local", timeout=60)
    assert "#!/bin/bash" not in local.stdout and "8 task(s)" in local.stdout


def test_cli_bad_spec_is_one_line_error(fake_models: Path) -> None:
    path = _spec(fake_models, GOOD.replace("shards = 3", "shards = 0"))
    proc = memwh("submit", str(path), check=False, timeout=60)
    assert proc.returncode == 2
    assert "shards: must be >= 1" in proc.stderr and "Traceback" not in proc.stderr
    assert not (fake_models / "out").exists()


def test_status_from_markers_without_slurm(fake_models: Path) -> None:
    """A local submission whose worker died: status says failed + last log line + command."""
    spec = load_spec(_spec(fake_models, GOOD))
    tasks = expand(spec)
    wl = write_worklist(spec, tasks[:2], "local")
    (spec.sweep_dir / "submit-0001.json").write_text(json.dumps({"executor": "local"}))
    (wl.log_dir / "task-00000.log").write_text(
        "memwh: task 0 -> ...\nRuntimeError: CUDA out of memory\n\n"
    )
    marker = spec.sweep_dir / "tasks" / f"{tasks[0].file_key}.json"
    marker.write_text(
        json.dumps({"state": "running", "submission": 1, "pid": 2**22 + 1, "host": "gone"})
    )
    _complete_by_hand(spec, tasks[1])
    _complete_by_hand(spec, tasks[2], dtype="bfloat16")
    st = sweep_status(spec)
    states = {s.task.key: s for s in st.tasks}
    assert states[tasks[0].key].state == "failed"
    assert states[tasks[0].key].last_log_line == "RuntimeError: CUDA out of memory"
    assert states[tasks[1].key].state == "done"
    assert states[tasks[2].key].state == "conflict"
    assert states[tasks[2].key].detail == (
        "complete with other settings: dtype bfloat16 -> float32"
    )
    assert st.counts() == {
        "done": 1, "conflict": 1, "running": 0, "queued": 0, "failed": 1, "pending": 5,
    }  # fmt: skip
    assert st.resubmit_command() == f"memwh submit {spec.path} --executor local"


def test_pythia_example_spec_parses(tmp_path: Path) -> None:
    """examples/pythia_sweep.toml is for users (not run), but it must stay a valid spec."""
    example = Path(__file__).resolve().parents[2] / "examples" / "pythia_sweep.toml"
    text = example.read_text().replace("/data/pile", str(tmp_path / "pile"))
    for kind in ("standard", "deduped"):
        d = tmp_path / "pile" / f"{kind}-preshuffled"
        d.mkdir(parents=True)
        with open(d / "document.bin", "wb") as f:  # sparse: 146,432,000 rows of 2049 tokens
            f.truncate(146_432_000 * 2049 * 2)
    spec = load_spec(_spec(tmp_path, text, "pythia_sweep.toml"))
    assert len(spec.models) == 16
    assert (
        spec.models[0].revisions[0] == "step13000" and spec.models[0].revisions[-1] == "step143000"
    )
    assert {m.data for m in spec.models[8:]} == {
        str(tmp_path / "pile/deduped-preshuffled/document.bin")
    }
    assert (spec.models[0].family, spec.models[0].n_params) == ("pythia", 70426624)
    assert {m.family for m in spec.models[8:]} == {"pythia-deduped"}
    tasks = expand(spec)
    assert len(tasks) == 16 * 14 * 32
    assert tasks[0].meta().family == "pythia" and tasks[0].meta().n_params == 70426624
    script = render_script(
        spec, tmp_path / "worklist-0001.json", len(tasks), tmp_path, max_size=1001
    )
    assert "#SBATCH --array=0-1000%64" in script and "8 arrays" in script
    assert "#SBATCH --signal=B:USR1@300" in script and "module load cuda/12.1" in script


def test_roles_reach_the_units(fake_models: Path) -> None:
    text = GOOD.replace(
        "shards = 2",
        'shards = 2\nrole = "edited"\nvariant_of = "m1@step3"\nmethod = "fine-tune"\n'
        "method_params = { lr = 0.001, steps = 10 }",
    )
    tasks = expand(load_spec(_spec(fake_models, text)))
    m2 = [u for u in tasks if u.model == "m2"]
    assert m2 and all(u.role == "edited" and u.variant_of == "m1@step3" for u in m2)
    assert m2[0].method_params == '{"lr": 0.001, "steps": 10}'
    assert all(u.role is None for u in tasks if u.model == "m1")
    from memwh.inference_jobs.sweep.tasks import Task

    assert Task.from_json(m2[0].to_json()) == m2[0]


def test_model_facts_reach_the_units_and_bad_ones_name_the_key(fake_models: Path) -> None:
    facts = (
        'family = "m"\nn_params = 2000\ntokens_per_step = 4096\nsequences_per_step = 64\n'
        'revisions = ["step2", "main"]\nsteps = {main = 7}'
    )
    (fake_models / "suite" / "m2" / "main").mkdir()
    (fake_models / "suite" / "m2" / "main" / "config.json").write_text("{}")
    spec = load_spec(_spec(fake_models, GOOD.replace('revisions = ["step2"]', facts)))
    metas = {(u.revision, u.meta()) for u in expand(spec) if u.model == "m2"}
    assert {(r, m.step, m.family, m.n_params, m.tokens_per_step, m.sequences_per_step) for r, m in metas} == {
        ("step2", None, "m", 2000, 4096, 64), ("main", 7, "m", 2000, 4096, 64),
    }  # fmt: skip
    wl = write_worklist(spec, expand(spec), "local")
    assert [u.meta() for u in load_worklist(wl.path).tasks] == [u.meta() for u in expand(spec)]
    for bad, key in (
        ('revisions = ["step2"]\nsteps = {main = 7}', "models[1].steps.main: 'main' is not one"),
        ('revisions = ["step2"]\nsteps = {step2 = 3}', "models[1].steps.step2: contradicts"),
        ('revisions = ["step2"]\nn_params = 0', "models[1].n_params: must be >= 1"),
        ('revisions = ["step2"]\nparams = 5\nn_params = 5', "models[1].params: give n_params only"),
    ):
        with pytest.raises(MemwhError, match=re.escape(key)):
            load_spec(_spec(fake_models, GOOD.replace('revisions = ["step2"]', bad)))


def test_every_scoring_option_of_infer_is_a_sweep_option() -> None:
    """[scoring] carries every option of `memwh infer` that is not set per model, shard or
    revision elsewhere in the spec (or a CLI-only switch): a new infer option fails here until
    sweeps take it too."""
    import typer

    from memwh.cli import app
    from memwh.inference_jobs.sweep.spec import _SCORING_KEYS

    infer = {p.name for p in typer.main.get_command(app).commands["infer"].params}
    elsewhere = {
        "model", "data", "out", "revision", "name", "seq_range", "shard", "num_shards",  # grid
        "family", "n_params", "tokens_per_step", "sequences_per_step", "step",  # [[models]]
        "role", "variant_of", "method", "method_params",  # [[models]]
        "force", "quiet",  # never in a sweep: a conflict stops it; logs go to files
    }  # fmt: skip
    assert infer - elsewhere == _SCORING_KEYS
