"""DDL of the raw layer: the tables dbt's sources read (warehouse/models/__sources.yml)."""

from __future__ import annotations

import duckdb

RAW_SCHEMA = "raw"

# One row per (unit, sequence). Metrics are nullable because imported results from other
# tools carry only some of them (e.g. Pythia's eval CSVs have only the fractional score).
SCORES_DDL = """
CREATE TABLE IF NOT EXISTS raw.scores (
    model               VARCHAR  NOT NULL,
    revision            VARCHAR  NOT NULL,
    seq_idx             BIGINT   NOT NULL,
    prefix_match_len    SMALLINT,
    exact_match         BOOLEAN,
    memorization_score  REAL,
    tf_token_accuracy   REAL,
    loss                REAL,
    min_k_logprob       REAL,
    zlib_ratio          REAL,
    run_id              VARCHAR  NOT NULL
)
"""

# One row per shard manifest (or per import): provenance of every score row.
RUNS_DDL = """
CREATE TABLE IF NOT EXISTS raw.runs (
    run_id               VARCHAR PRIMARY KEY,
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
    ingested_at          TIMESTAMP NOT NULL
)
"""

# Per-sequence metadata of scored datasets (e.g. the demo corpus's duplication counts).
SEQUENCES_DDL = """
CREATE TABLE IF NOT EXISTS raw.sequences (
    data_fingerprint VARCHAR NOT NULL,
    seq_idx          BIGINT  NOT NULL,
    duplicates       INTEGER,
    is_canary        BOOLEAN
)
"""

INGESTED_FILES_DDL = """
CREATE TABLE IF NOT EXISTS raw.ingested_files (
    path        VARCHAR PRIMARY KEY,
    kind        VARCHAR NOT NULL,   -- scores | sequences | import
    size        BIGINT  NOT NULL,
    mtime       DOUBLE  NOT NULL,
    sha256      VARCHAR,
    run_id      VARCHAR,
    n_rows      BIGINT  NOT NULL,
    ingested_at TIMESTAMP NOT NULL
)
"""

ALL_DDL = (SCORES_DDL, RUNS_DDL, SEQUENCES_DDL, INGESTED_FILES_DDL)


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw schema and tables if missing (idempotent)."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
    for ddl in ALL_DDL:
        con.execute(ddl)
