from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session", autouse=True)
def _ruby_is_there() -> None:
    """The Omnibus tests run Ruby (``ruby -c`` and the recording harness)."""
    if shutil.which("ruby") is None:
        pytest.fail("the Omnibus tests need Ruby on this machine: run scripts/hostdeps.sh "
                    "(or apt-get install ruby)")
