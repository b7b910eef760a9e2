"""The ground every stage stands on: the file contract, paths, errors, database access.

Imports no stage (nor torch, nor dbt): ingest, jobs, warehouse and reports all import it.
"""
