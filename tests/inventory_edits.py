"""Editing a copied inventory's YAML files in tests."""

from __future__ import annotations

from pathlib import Path

import yaml


def edit_yaml(path: Path, **values) -> None:
    """Set (or, with None, remove) top-level keys of a YAML mapping file, creating it if absent."""
    data = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
    for key, value in values.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data))
