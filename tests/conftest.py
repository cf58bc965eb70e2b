"""Shared fixtures: the built-in demo data, and the optional real public data in ../shared/data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Test modules live in folders mirroring src/ptsynth (imported with --import-mode=importlib);
# shared builders such as synthetic_tables.py sit here, beside this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))


def shared_data_dir() -> Path:
    return Path(os.environ.get("PTSYNTH_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real public data not found at {path} (set PTSYNTH_SHARED_DATA); skipped on a fresh clone")
    return path


@pytest.fixture(scope="session")
def demo_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 demo case records, generated once per session."""
    from ptsynth.demo import generate_demo

    path = tmp_path_factory.mktemp("demo") / "demo.csv"
    generate_demo(2_000, 7, path)
    return path


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server with an HTCDS-shaped schema loaded (tests/pg_server.py): the one
    named by PTSYNTH_TEST_PG_URL, else a throw-away server started here (as an unprivileged user)
    and stopped and deleted at the end of the session, also when tests fail."""
    import pg_server

    url = os.environ.get("PTSYNTH_TEST_PG_URL")
    if url:
        manager = pg_server.given_server(url)
    else:
        bindir = pg_server.find_bindir()
        if bindir is None:
            pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: install the "
                        "postgresql package or set PTSYNTH_PG_BIN / PTSYNTH_TEST_PG_URL")
        manager = pg_server.temporary_postgres(bindir)
    with manager as server:
        pg_server.load_htcds(server)
        yield server
