from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from simulator.routing.catalog import DEFAULT_CATALOG_PATH, Catalog, default_catalog

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """fleetsim's parse cache (and every fleetsim the tests start) writes under a test dir."""
    import os

    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return default_catalog()


@pytest.fixture(scope="session")
def raw_catalog() -> list[dict]:
    """The CE catalog as GitLab's Ruby sees it: symbols as ':x' strings."""
    return yaml.safe_load(DEFAULT_CATALOG_PATH.read_text())
