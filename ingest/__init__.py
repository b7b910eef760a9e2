"""ingest: load completed score shards (and other tools' results) into DuckDB's raw layer.

Never imports torch or inference_jobs: loading results must not need a GPU stack.

Public API:

* ``ingest_root(root, db=None, *, strict=False, progress=True, ...) -> IngestReport``
* ``import_pythia_csv``, ``import_memorized_index``, ``import_pythia_analysis`` -> ``ImportResult``
* ``import_exposure``, ``declare_exposure_rule`` -> ``ExposureResult`` (what each model trained on)
* ``import_sequence_meta`` -> ``SequenceMetaResult`` (category, insertion window, copies)
* ``declare_role`` -> ``RoleResult`` (unit roles of controlled experiments)
"""

from memwh.ingest.exposure import ExposureResult, declare_exposure_rule, import_exposure
from memwh.ingest.importers import (
    ImportResult,
    import_memorized_index,
    import_pythia_analysis,
    import_pythia_csv,
)
from memwh.ingest.loader import IngestError, IngestReport, ingest_root
from memwh.ingest.roles import RoleResult, declare_role
from memwh.ingest.sequence_meta import SequenceMetaResult, import_sequence_meta
from memwh.ingest.validate import FileProblem

__all__ = [
    "ExposureResult",
    "FileProblem",
    "ImportResult",
    "IngestError",
    "IngestReport",
    "RoleResult",
    "SequenceMetaResult",
    "declare_exposure_rule",
    "declare_role",
    "import_exposure",
    "import_memorized_index",
    "import_pythia_analysis",
    "import_pythia_csv",
    "import_sequence_meta",
    "ingest_root",
]
