"""Saving what a script measured: one JSON file per run, under results/ or wherever the user asks."""
from __future__ import annotations

import json
from pathlib import Path


def write_json(path, payload) -> Path:
    """Write `payload` as indented JSON, creating the folder, and say where it went."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}", flush=True)
    return path
