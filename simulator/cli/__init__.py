"""``fleetsim``: argparse and output only; each command's work lives in the layers below."""

from __future__ import annotations

from .main import main, run

__all__ = ["main", "run"]
