"""The embedded demo: a synthetic corpus with known duplication counts and a tiny GPT-NeoX
suite (Pythia architecture, several sizes, shared data order, stepN checkpoints) trained
by memwh itself, so the whole pipeline runs without a GPU or a model hub."""

from memwh.demo_suite.build import build_suite, default_suite_dir
from memwh.demo_suite.corpus import unique_sequences
from memwh.demo_suite.manifest import MANIFEST_CSV, MANIFEST_JSON, checkpoints_frame, read_manifest
from memwh.demo_suite.settings import ModelSize, SuiteSettings

__all__ = [
    "MANIFEST_CSV",
    "MANIFEST_JSON",
    "ModelSize",
    "SuiteSettings",
    "build_suite",
    "checkpoints_frame",
    "default_suite_dir",
    "read_manifest",
    "unique_sequences",
]
