"""Where a command's records come from: a file, a database URL, or the config's source.

Why one function: ``release`` and ``validate`` must read the same records the same way, and a
database URL on the command line must be checked (no password in it) before anything runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ptsynth.config import ReleaseConfig
from ptsynth.errors import ConfigError

#: Help texts shared by the commands that read records.
DATA_HELP = ("Sensitive records: a CSV/TSV/Parquet/Arrow file, or a database URL "
             "(postgresql://user@host/db, postgresql:///?service=name, sqlite:///cases.db) with "
             "--table or --query; default: \\[dataset.source] of the config. Passwords come from "
             "PGPASSWORD, ~/.pgpass or a libpq service file, never from the URL.")
QUERY_HELP = "Read-only SQL query whose rows are the records (with a database URL or \\[dataset.source])."
TABLE_HELP = "Table whose rows are the records (with a database URL or \\[dataset.source])."


def records_input(data: str | None, config: str | Path | ReleaseConfig, *, query: str | None,
                  table: str | None) -> Any:
    """A file path or a record source for ``data`` (see :data:`DATA_HELP`)."""
    from ptsynth.ingest import database_source, is_database_url

    if data is not None and is_database_url(data):
        if query is None and table is None:
            raise ConfigError("a database URL needs --table or --query", key="--query")
        return database_source(data, table=table, query=query)
    if data is not None:
        if query is not None or table is not None:
            raise ConfigError("applies to a database URL or [dataset.source], not to a file",
                              key="--query" if query is not None else "--table")
        return Path(data)
    cfg = config if isinstance(config, ReleaseConfig) else ReleaseConfig.load(config)
    source = cfg.dataset.source
    if source is None:
        raise ConfigError("give the records: a file, a postgresql:// or sqlite:/// URL, or "
                          "[dataset.source] in the config", key="DATA")
    if query is None and table is None:
        return source.record_source()
    return database_source(source.url, table=table, query=query, base=source.base)
