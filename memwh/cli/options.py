"""Options shared by several commands (one definition, one help text)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DbOpt = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="Warehouse file (default: $MEMWH_DB, else $MEMWH_HOME/memwh.duckdb, "
        "else ./memwh-data/memwh.duckdb)",
    ),
]
