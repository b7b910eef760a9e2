"""ingest: load completed score shards (and other tools' results) into DuckDB's raw layer.

Never imports torch or inference_jobs: loading results must not need a GPU stack.
"""
