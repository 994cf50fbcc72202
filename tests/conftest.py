"""Shared fixtures: the sample data committed in data/sample, temporary Helios homes, PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
SHARED_DATA = REPO.parent / "shared" / "data"
# A developer's own Claude key must not make the suite call Claude (the default approver follows it).
os.environ.pop("ANTHROPIC_API_KEY", None)


def sample(name: str) -> pd.DataFrame:
    """A sample file as stored (real exchange data, see data/sample/PROVENANCE.md)."""
    return pd.read_parquet(SAMPLE / name)


@pytest.fixture
def helios_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HELIOS_HOME and DAGSTER_HOME under tmp_path; returns HELIOS_HOME."""
    home = tmp_path / "helios"
    monkeypatch.setenv("HELIOS_HOME", str(home))
    monkeypatch.setenv("HELIOS_FILE_DIR", str(SAMPLE))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    return home


def shared_data(relative: str) -> Path:
    """A path under ../shared/data; skips where a user's clone has no ../shared, fails under CI."""
    path = SHARED_DATA / relative
    if not path.exists():
        message = f"{path} not found: real shared data lives beside the repository, not in a user's clone"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set: it must be there)")
        pytest.skip(message)
    return path


def _postgres_url() -> str:
    return os.environ.get("HELIOS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A reachable PostgreSQL; skips with a message where there is none, fails under CI."""
    import psycopg2

    url = _postgres_url()
    try:
        psycopg2.connect(url, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 -- any failure to connect means "not available here"
        message = f"PostgreSQL not reachable at {url}: {exc.__class__.__name__}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set: integration tests must run)")
        pytest.skip(message)
    yield url
