"""A finished run's results file, ``results.json``: steps, seconds, scores and the weights it
chose. Written once when a run ends (whole or not at all); absent while it trains."""

from __future__ import annotations

import json
import os

from etils import epath

from aslx import files

RESULTS_FILE = "results.json"


def write(workdir: str | os.PathLike, results: dict) -> epath.Path:
    """``workdir/results.json``, written whole or not at all."""
    return files.write_json(files.path(workdir) / RESULTS_FILE, results)


def read(workdir: str | os.PathLike) -> dict:
    """A workdir's results (``{}`` while the run has not finished). ``ValueError`` naming the
    file when it is damaged."""
    path = files.path(workdir) / RESULTS_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e}); delete it and rerun the run") from None
