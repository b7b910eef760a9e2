"""DDL of the raw layer: the tables dbt's sources read (warehouse/models/__sources.yml).

Storage layout (why ``raw.scores`` is a view):

* ``raw.score_rows`` holds the per-sequence metrics plus an INTEGER ``run_key``. Writing
  the three constant-per-shard strings (model, revision, run_id) into every one of tens of
  millions of rows costs about a third of the load time and most of the storage; an
  integer key costs almost nothing.
* ``raw.scores`` is a view joining ``raw.score_rows`` to ``raw.runs`` and exposes exactly the
  columns the warehouse reads: model, revision, seq_idx, prompt_len, is_run_prompt_len (the row
  was scored at its run's ``prompt_len``, the longest of a multi-prompt run), the metrics,
  the label certainty (label_margin, label_certain, label_verified: contract version 3; NULL
  for older shards and imports), run_id and data_fingerprint (the run's dataset). Read it; only
  ingest writes ``raw.score_rows``.
* ``raw.runs`` has one row per shard manifest or per imported unit (provenance) keyed by
  ``run_id`` (the manifest's uuid) and ``run_key`` (the integer used by score rows).

Conventions: a *unit* is (model, revision, dataset), dataset = the run's data_fingerprint
(contract.NO_DATASET when the manifest names none): one checkpoint scored on two datasets is
two units. Replacing a shard (a ``--force`` rerun with a
new run_id) deletes the old run's rows and its ``raw.runs`` row in the same transaction.
``population`` is the number of sequences a run scored: ``n_rows``, except for
memorized-index imports (``rows_are_sparse``) where only memorized rows are stored and the
population is every seq_idx in ``[seq_start, seq_end)``.
"""

from __future__ import annotations

import duckdb

from memwh.core.errors import MemwhError

RAW_SCHEMA = "raw"

# Metric columns of raw.scores, in order. Nullable because imported results from other
# tools carry only some of them (e.g. Pythia's eval CSVs have only the fractional score).
SCORE_METRICS: tuple[str, ...] = (
    "prefix_match_len",
    "exact_match",
    "memorization_score",
    "tf_token_accuracy",
    "loss",
    "min_k_logprob",
    "zlib_ratio",
)

# Physical per-sequence rows; run_key references raw.runs.run_key.
SCORE_ROWS_DDL = """
CREATE TABLE IF NOT EXISTS raw.score_rows (
    run_key             INTEGER  NOT NULL,
    seq_idx             BIGINT   NOT NULL,
    prompt_len          SMALLINT,
    prefix_match_len    SMALLINT,
    exact_match         BOOLEAN,
    memorization_score  REAL,
    tf_token_accuracy   REAL,
    loss                REAL,
    min_k_logprob       REAL,
    zlib_ratio          REAL,
    label_margin        REAL,    -- contract v3 (label certainty); NULL for older shards/imports
    label_certain       BOOLEAN,
    label_verified      BOOLEAN
)
"""

# One row per (unit, sequence): what dbt's staging reads.
SCORES_VIEW_DDL = """
CREATE OR REPLACE VIEW raw.scores AS
SELECT
    r.model,
    r.revision,
    s.seq_idx,
    coalesce(s.prompt_len, r.prompt_len) AS prompt_len,
    coalesce(s.prompt_len = r.prompt_len, true) AS is_run_prompt_len,
    s.prefix_match_len,
    s.exact_match,
    s.memorization_score,
    s.tf_token_accuracy,
    s.loss,
    s.min_k_logprob,
    s.zlib_ratio,
    s.label_margin,
    s.label_certain,
    s.label_verified,
    r.run_id,
    r.data_fingerprint
FROM raw.score_rows AS s
JOIN raw.runs AS r USING (run_key)
"""

# One row per shard manifest (or per imported unit): provenance of every score row.
RUNS_DDL = """
CREATE TABLE IF NOT EXISTS raw.runs (
    run_id               VARCHAR PRIMARY KEY,
    run_key              INTEGER NOT NULL UNIQUE,
    source               VARCHAR NOT NULL,   -- memwh | pythia-csv | memorized-index | pythia-analysis
    model                VARCHAR NOT NULL,
    revision             VARCHAR NOT NULL,
    step                 BIGINT,
    family               VARCHAR,
    model_path           VARCHAR,
    commit_hash          VARCHAR,
    n_params             BIGINT,
    non_embedding_params BIGINT,
    tokens_per_step      BIGINT,
    sequences_per_step   BIGINT,
    tokens_seen          BIGINT,
    train_flops          DOUBLE,
    dtype                VARCHAR,
    device               VARCHAR,
    batch_size           INTEGER,
    prompt_len           INTEGER,
    cont_len             INTEGER,
    mode                 VARCHAR,
    suppress_eos         BOOLEAN,
    data_source          VARCHAR,
    data_fingerprint     VARCHAR,
    shard                INTEGER,
    num_shards           INTEGER,
    seq_start            BIGINT,
    seq_end              BIGINT,
    n_rows               BIGINT,
    population           BIGINT,  -- sequences this run scored (> n_rows for memorized-index imports)
    rows_are_sparse      BOOLEAN, -- true when only memorized rows are stored (memorized-index)
    started_at           TIMESTAMP,
    finished_at          TIMESTAMP,
    host                 VARCHAR,
    slurm_job_id         VARCHAR,
    slurm_array_job_id   VARCHAR,
    slurm_array_task_id  VARCHAR,
    versions             JSON,
    git_sha              VARCHAR,
    manifest             JSON,
    source_path          VARCHAR, -- the shard's Parquet file, or the imported file/folder
    ingested_at          TIMESTAMP NOT NULL,
    role                 VARCHAR, -- controlled experiments: contract.ROLES (NULL = undeclared)
    variant_of           VARCHAR, -- base unit "model@revision"
    method               VARCHAR,
    method_params        JSON
)
"""

# Per-sequence metadata of scored datasets (e.g. the demo corpus's duplication counts).
SEQUENCES_DDL = """
CREATE TABLE IF NOT EXISTS raw.sequences (
    data_fingerprint VARCHAR NOT NULL,
    seq_idx          BIGINT  NOT NULL,
    duplicates       INTEGER,
    is_canary        BOOLEAN,
    category          VARCHAR, -- e.g. canary, pii, copyright (controlled insertion)
    insert_first_step BIGINT,  -- 0-based training steps of the first and last inserted copy
    insert_last_step  BIGINT,
    extra             JSON     -- the dataset's columns kept with --keep-columns, as one object
)
"""

# The scored token windows (prompt + continuation) of each dataset, once per
# (data_fingerprint, seq_idx) however many units scored it: the text `memwh show` prints.
SEQUENCE_WINDOWS_DDL = """
CREATE TABLE IF NOT EXISTS raw.sequence_windows (
    data_fingerprint VARCHAR   NOT NULL,
    seq_idx          BIGINT    NOT NULL,
    tokens           INTEGER[] NOT NULL
)
"""

# Generated continuations of generate-mode runs saved with --save-generations (per run,
# deleted with it; raw.generations adds model and revision like raw.scores does).
GENERATION_ROWS_DDL = """
CREATE TABLE IF NOT EXISTS raw.generation_rows (
    run_key          INTEGER   NOT NULL,
    seq_idx          BIGINT    NOT NULL,
    generated_tokens INTEGER[]
)
"""

GENERATIONS_VIEW_DDL = """
CREATE VIEW IF NOT EXISTS raw.generations AS
SELECT r.model, r.revision, g.seq_idx, g.generated_tokens, r.data_fingerprint, r.run_id
FROM raw.generation_rows AS g
JOIN raw.runs AS r USING (run_key)
"""

# Roles declared after the fact (`memwh import role`): win over the manifests' fields.
UNIT_ROLES_DDL = """
CREATE TABLE IF NOT EXISTS raw.unit_roles (
    model         VARCHAR NOT NULL,
    revision      VARCHAR NOT NULL,
    role          VARCHAR,
    variant_of    VARCHAR,   -- base unit "model@revision"
    method        VARCHAR,
    method_params JSON,
    declared_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (model, revision)
)
"""

# Columns added after a table's first release: databases made before get them on open.
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("runs", "role", "VARCHAR"),
    ("runs", "variant_of", "VARCHAR"),
    ("runs", "method", "VARCHAR"),
    ("runs", "method_params", "JSON"),
    ("sequences", "category", "VARCHAR"),
    ("sequences", "insert_first_step", "BIGINT"),
    ("sequences", "insert_last_step", "BIGINT"),
    ("sequences", "extra", "JSON"),
    ("score_rows", "label_margin", "REAL"),
    ("score_rows", "label_certain", "BOOLEAN"),
    ("score_rows", "label_verified", "BOOLEAN"),
)

# What has been loaded: lets a second `memwh ingest` skip unchanged files without reading
# them. `path` is the absolute Parquet path for shards and sequence files; for imports it
# is "<absolute input path>#<model>@<revision>" (one row per imported unit).
INGESTED_FILES_DDL = """
CREATE TABLE IF NOT EXISTS raw.ingested_files (
    path        VARCHAR PRIMARY KEY,
    kind        VARCHAR NOT NULL,   -- scores | sequences | windows | import
    size        BIGINT  NOT NULL,
    mtime       DOUBLE  NOT NULL,
    sha256      VARCHAR,
    run_id      VARCHAR,
    n_rows      BIGINT  NOT NULL,
    ingested_at TIMESTAMP NOT NULL
)
"""

# Exposure (what a model trained on), per model AND the dataset its seq_idx index
# (`dataset` = the data_fingerprint of the scored runs). One row per declaration: either a
# per-sequence table (raw.exposure) or a rule (first_step = seq_idx div sequences_per_step,
# Pythia's pre-shuffled order), computed in the warehouse, never stored per row.
# `exposure_id` changes on every (re-)import so per-unit models know to recompute.
EXPOSURE_SETS_DDL = """
CREATE TABLE IF NOT EXISTS raw.exposure_sets (
    model              VARCHAR NOT NULL,
    dataset            VARCHAR NOT NULL,
    kind               VARCHAR NOT NULL,   -- table | rule
    sequences_per_step BIGINT,             -- rule: first_step = seq_idx div sequences_per_step
    train_steps        BIGINT,             -- rule: steps trained (first_step >= it -> never trained)
    exposure_id        VARCHAR NOT NULL,
    source             VARCHAR NOT NULL,   -- file | rule | pythia-analysis
    source_path        VARCHAR,
    sha256             VARCHAR,
    n_rows             BIGINT  NOT NULL,   -- table rows (0 for a rule)
    n_trained          BIGINT,             -- rows with a first_step
    imported_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (model, dataset)
)
"""

# Per-sequence exposure of kind 'table' declarations (first_step NULL = never trained).
EXPOSURE_DDL = """
CREATE TABLE IF NOT EXISTS raw.exposure (
    model       VARCHAR NOT NULL,
    dataset     VARCHAR NOT NULL,
    seq_idx     BIGINT  NOT NULL,
    first_step  BIGINT,
    n_exposures INTEGER,
    last_step   BIGINT
)
"""

RUN_KEY_SEQ_DDL = "CREATE SEQUENCE IF NOT EXISTS raw.run_key_seq START 1"

ALL_DDL = (
    RUN_KEY_SEQ_DDL,
    RUNS_DDL,
    SCORE_ROWS_DDL,
    SEQUENCES_DDL,
    SEQUENCE_WINDOWS_DDL,
    GENERATION_ROWS_DDL,
    GENERATIONS_VIEW_DDL,
    INGESTED_FILES_DDL,
    EXPOSURE_SETS_DDL,
    EXPOSURE_DDL,
    UNIT_ROLES_DDL,
)


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw schema and tables if missing (idempotent)."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
    kinds = dict(
        con.execute(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'raw'"
        ).fetchall()
    )
    if kinds.get("scores") == "BASE TABLE":
        raise MemwhError(
            "raw.scores is a table written by an older memwh (now a view over raw.score_rows); "
            "delete the database file and run `memwh ingest` again"
        )
    cols = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'raw' AND table_name = 'score_rows'"
        ).fetchall()
    }
    if cols and "prompt_len" not in cols:  # a database written before contract version 2
        _add_prompt_len(con)
    for ddl in ALL_DDL:
        con.execute(ddl)
    have = set(
        con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'raw'"
        ).fetchall()
    )
    for table, column, kind in ADDED_COLUMNS:
        if (table, column) not in have:
            con.execute(f"ALTER TABLE raw.{table} ADD COLUMN {column} {kind}")
    con.execute(SCORES_VIEW_DDL)  # after the added columns: it reads them


def _add_prompt_len(con: duckdb.DuckDBPyConnection) -> None:
    """Rebuild raw.score_rows with the prompt_len column (after seq_idx), filled from each
    run's prompt_len: DuckDB adds columns only at the end and the loader inserts by position."""
    con.execute("DROP VIEW IF EXISTS raw.scores")
    con.execute("ALTER TABLE raw.score_rows RENAME TO _score_rows_v1")
    con.execute(SCORE_ROWS_DDL)
    con.execute(
        "INSERT INTO raw.score_rows BY NAME SELECT s.run_key, s.seq_idx, r.prompt_len::SMALLINT AS prompt_len, "
        "s.* EXCLUDE (run_key, seq_idx) "
        "FROM raw._score_rows_v1 AS s LEFT JOIN raw.runs AS r USING (run_key)"
    )
    con.execute("DROP TABLE raw._score_rows_v1")
