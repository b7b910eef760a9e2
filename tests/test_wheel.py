"""The wheel as a user gets it: built from the source tree, installed into a fresh venv, run from
an empty folder. Nothing here may come from the editable install or the repo checkout.

The fresh venv borrows the project venv's *dependencies* through a .pth line per site-packages
folder (a .pth line only extends sys.path: the folder's own .pth files, such as the editable
install's finder, are not run), so the check does not download torch again; memwh itself comes
only from the wheel, installed with --no-deps.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
STAGE_PACKAGES = ("ingest", "inference_jobs", "warehouse", "reports", "demo_suite")
# Never part of a build: VCS, venvs, caches, data and dbt output; build/ and dist/ only at the
# top (the warehouse has a mart folder named build).
_SKIP = {"memwh-data", "work", "target", "logs", "dbt_packages", "__pycache__"}
_SKIP_TOP = {"build", "dist"}


def _ignore(folder: str, names: list[str]) -> set[str]:
    top = Path(folder).resolve() == REPO.resolve()
    return {
        n
        for n in names
        if n in _SKIP or (top and n in _SKIP_TOP) or n.startswith(".") or n.endswith(".egg-info")
    }


def _site_packages(prefix: Path) -> Path:
    rel = Path(sysconfig.get_path("purelib")).relative_to(sysconfig.get_path("data"))
    return prefix / rel


def _files(root: Path) -> set[str]:
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def _clean_env(tmp: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MEMWH_HOME", "MEMWH_DB", "PYTHONPATH", "VIRTUAL_ENV")
    }
    env["HOME"] = str(tmp / "home")  # no user-level dbt/pip config leaks in
    return env


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(wheel, venv) built from a copy of the source tree."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=_ignore)
    dist = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)],
        check=True,
        timeout=900,
    )
    (wheel,) = dist.glob("memwh-*.whl")

    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env_dir)
    deps = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]
    assert deps, sys.path
    site = _site_packages(env_dir)
    (site / "_memwh_test_deps.pth").write_text("\n".join(deps) + "\n")
    py = env_dir / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        timeout=600,
    )
    return wheel, env_dir


def test_wheel_contains_one_namespace_and_the_dbt_project(wheel_venv):
    wheel, _ = wheel_venv
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"memwh", "memwh-0.1.0.dist-info"}, tops
    wh = [n.removeprefix("memwh/warehouse/") for n in names if n.startswith("memwh/warehouse/")]
    for f in ("dbt_project.yml", "profiles.yml", "__sources.yml"):
        assert any(n.endswith(f) for n in wh), f
    assert any(n.startswith("models/marts/") and n.endswith(".sql") for n in wh)
    assert any(n.startswith("models/marts/") and n.endswith(".yml") for n in wh)
    assert any(n.startswith("macros/") and n.endswith(".sql") for n in wh)
    assert any(n.startswith("seeds/") and n.endswith(".csv") for n in wh)
    # every model and YAML of the repo's project is in the wheel
    repo_project = {
        str(p.relative_to(REPO / "warehouse"))
        for d in ("models", "macros", "seeds")
        for p in (REPO / "warehouse" / d).rglob("*")
        if p.suffix in (".sql", ".yml", ".csv")
    }
    assert repo_project <= set(wh), sorted(repo_project - set(wh))[:5]
    assert not any(n.startswith(("target/", "logs/", "dbt_packages/")) for n in wh)


def test_installed_wheel_runs_the_quick_demo_from_an_empty_folder(wheel_venv, tmp_path: Path):
    _, env_dir = wheel_venv
    py, memwh = env_dir / "bin" / "python", env_dir / "bin" / "memwh"
    env = _clean_env(tmp_path)
    site = _site_packages(env_dir)
    work = tmp_path / "empty"
    work.mkdir()

    # memwh is the wheel's, not the checkout's; the stage folders are not top-level modules
    where = subprocess.run(
        [
            py,
            "-c",
            "import sys, memwh.warehouse.build; print(sys.modules['memwh.warehouse.build'].WAREHOUSE_DIR)",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()) == site / "memwh" / "warehouse", where.stdout
    for name in STAGE_PACKAGES:
        p = subprocess.run(
            [py, "-c", f"import {name}"], cwd=work, env=env, capture_output=True, text=True
        )
        assert p.returncode != 0 and "ModuleNotFoundError" in p.stderr, (name, p.stderr)

    installed = _files(site)
    p = subprocess.run(
        [memwh, "demo", "--quick"], cwd=work, env=env, capture_output=True, text=True, timeout=1800
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    home = work / "memwh-data" / "quick"
    report = home / "report" / "report.html"
    assert report.is_file() and report.stat().st_size > 10_000
    db = home / "memwh.duckdb"
    assert db.is_file()
    assert (home / ".memwh.duckdb.dbt").is_dir(), "dbt's target beside the database"

    # any dbt command against the packaged project and the demo's database
    ls = subprocess.run(
        [memwh, "dbt", "--db", str(db), "ls", "--resource-type", "model"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ls.returncode == 0, ls.stdout[-2000:] + ls.stderr[-2000:]
    assert "memwh.marts.cross_scale_agreement" in ls.stdout
    show = subprocess.run(
        [memwh, "dbt", "--db", str(db), "show", "--inline", "select count(*) as n from units"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    # 8 units: the quick suite, like the full one, saves step0 and evenly spaced checkpoints
    assert show.returncode == 0 and "| 8 " in show.stdout, show.stdout[-2000:]

    # the installed package was only read: no database, dbt target, logs or scores in it
    assert _files(site) == installed, sorted(_files(site) - installed)[:10]
