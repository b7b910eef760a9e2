"""Session-wide fixtures: the real demo pipeline, run once and shared by every area's tests.

Set MEMWH_TEST_HOME to a folder to reuse a demo run between local pytest sessions (the suite
and the scores are cached there); CI starts from a fresh temporary folder.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest

# Tests must never reach for a hub: everything is local.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"


DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


class MemwhDeprecationError(AssertionError):
    """memwh itself called an API its library marks as deprecated."""


# Frames a call passes through between its caller and the callee's package.
_PLUMBING = ("torch.nn.modules.module", "functools", "contextlib")


def called_from_memwh(frame: FrameType | None) -> bool:
    """Is a warning issued in `frame` memwh's call of a deprecated API? Walking outward from
    the issuing frame through the issuing package's own frames (and call plumbing such as
    torch's Module.__call__), the first other frame must be memwh's. A library deprecating
    its own internals, a library calling another one's deprecated API (dbt -> jsonschema), a
    library warning while it is imported, or a test calling one directly, is not memwh's call."""
    if frame is None:
        return False
    owner = frame.f_globals.get("__name__", "").split(".")[0]
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name == "memwh" or name.startswith("memwh."):
            return True
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return False
        if name.split(".")[0] != owner and name not in _PLUMBING:
            return False
        frame = frame.f_back
    return False


@pytest.fixture(autouse=True, scope="session")
def _memwh_deprecations_are_errors():
    """Deprecation warnings raised while memwh calls a library are test failures (issue 14:
    e.g. transformers' ``past_key_values`` -> ``cache``). Libraries warn at a stacklevel that
    points into their own wrappers, so pytest's module filters cannot see memwh there: this
    wraps ``warnings.warn`` and looks at the real call stack. The ini's module filters
    (``error::...:memwh``) catch warnings attributed to memwh modules directly."""
    original = warnings.warn

    def warn(message, category=None, stacklevel=1, source=None, **kw):
        cat = category or (type(message) if isinstance(message, Warning) else UserWarning)
        if issubclass(cat, DEPRECATIONS) and called_from_memwh(sys._getframe(1)):
            raise MemwhDeprecationError(f"memwh calls a deprecated API: {message}")
        return original(message, category, stacklevel + 1, source, **kw)

    warnings.warn = warn
    yield
    warnings.warn = original


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Files worth keeping after a test run (screenshots, reports)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = os.environ.get("MEMWH_TEST_HOME")
    if env:
        Path(env).mkdir(parents=True, exist_ok=True)
        return Path(env)
    return tmp_path_factory.mktemp("demo-home")


@pytest.fixture(scope="session")
def demo_suite_dir(request: pytest.FixtureRequest) -> Path:
    """The real default demo suite, built once per machine into .pytest_cache (~2-3 min)
    and reused through build_suite's settings-hash cache."""
    from memwh.demo_suite import build_suite

    return build_suite(request.config.cache.mkdir("memwh-demo-suite") / "suite", progress=False)


@contextlib.contextmanager
def every_core() -> Iterator[None]:
    """torch on every core for the demo's models, as `memwh demo` runs them: tests/inference
    sets one thread for its tiny models, which would double the time of demo-sized ones."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def all_cores() -> Callable[[], contextlib.AbstractContextManager[None]]:
    """`with all_cores():` runs demo-sized torch work on every core (every_core)."""
    return every_core


@pytest.fixture(scope="session")
def demo_run(demo_home: Path, demo_suite_dir: Path):
    """The whole demo pipeline (suite -> scores -> ingest -> dbt build -> report), once,
    scored with every core."""
    from memwh.demo import run_demo

    with every_core():
        return run_demo(demo_home, suite_dir=demo_suite_dir, db=demo_home / "memwh.duckdb")


@pytest.fixture(scope="session")
def demo_db(demo_run) -> Path:
    return demo_run.db
