"""What a run was started with, so that no later start trains or scores it on anything else.

A training run writes ``provenance.json`` in its workdir when it first trains:

=================  ===========================================================================
key                value
=================  ===========================================================================
``records``        ``{dir, identity}``: the record set's folder and its identity
                   (:meth:`aslx.records.metadata.RecordSet.identity`: ``metadata.json`` and
                   every shard's name and size)
``config``         every config field that shapes what is trained, flattened
                   (``data.max_frames``, ``lr`` …): all but :data:`FREE_FIELDS`
``total_steps``    each start's ``total_steps`` in order (an extended run lists several)
=================  ===========================================================================

Every later start of the run (a resume, an extension, a rerun of a finished run) compares
itself with it before anything is written (:func:`differences`) and is refused, naming each
field that differs, when its records or a training field are not the ones the run was
started with: a run resumed on other records or with another learning rate would be neither
run, and a finished run rescored on another val set would report clips it trained on.
"""

from __future__ import annotations

import json
import os
from typing import Any

from aslx import files

FILE = "provenance.json"

#: Config fields a later start may change: how long (``total_steps``, recorded), how often it
#: logs, evaluates and saves, where it compiles and how its processes meet, and where the
#: records are (their identity is compared instead of their path).
FREE_FIELDS = frozenset(
    {
        "total_steps",
        "log_every",
        "eval_every",
        "checkpoint_every",
        "keep_last",
        "max_nonfinite",
        "compilation_cache",
        "distributed",
        "coordinator_address",
        "num_processes",
        "process_id",
        "resume_from_good",
        "decode_beam",
        "data.dir",
    }
)


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """``{"data.max_frames": 128, …}`` of a nested dict (values as JSON reads them back)."""
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= flatten(value, f"{name}.")
        else:
            out[name] = json.loads(json.dumps(value))
    return out


def record(config, records_dir: str, identity: str, earlier: dict | None = None) -> dict:
    """The provenance of a start of ``config`` on the record set ``records_dir`` (of
    ``identity``), after ``earlier`` starts (their ``total_steps`` kept)."""
    fields = flatten(config.to_dict())
    steps = list(earlier["total_steps"]) if earlier else []
    if not steps or steps[-1] != config.total_steps:
        steps.append(int(config.total_steps))
    return {
        "records": {"dir": str(records_dir), "identity": identity},
        "config": {k: v for k, v in sorted(fields.items()) if k not in FREE_FIELDS},
        "total_steps": steps,
    }


def differences(old: dict, new: dict) -> list[str]:
    """What differs between a run's provenance and a new start's, one entry a field:
    ``records: DIR (identity abc123…) -> DIR (def456…)``, ``lr: 0.001 -> 0.005``; a field
    the old record lacks (an older aslx) is not compared."""
    out = []
    before, after = old["records"], new["records"]
    if before["identity"] != after["identity"]:
        out.append(
            f"records: {before['dir']} ({before['identity'][:12]}…) -> {after['dir']} "
            f"({after['identity'][:12]}…)"
        )
    for key in sorted(set(old["config"]) | set(new["config"])):
        if key not in old["config"]:
            continue
        a, b = old["config"].get(key), new["config"].get(key)
        if a != b:
            out.append(f"{key}: {a!r} -> {b!r}")
    return out


def read(workdir: str | os.PathLike) -> dict | None:
    """The run's provenance, or ``None`` when it has none (a new run, or an older aslx's);
    ``ValueError`` naming the file when it is damaged."""
    path = files.path(workdir) / FILE
    if not path.exists():
        return None
    fix = "it says what the run was started with: restore it, or give a new --workdir"
    try:
        provenance = json.loads(path.read_text())
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{path}: damaged, not valid JSON ({e}); {fix}") from None
    if not isinstance(provenance, dict) or not {"records", "config", "total_steps"} <= set(
        provenance
    ):
        raise ValueError(f"{path}: damaged, its fields are missing; {fix}")
    return provenance


def write(workdir: str | os.PathLike, provenance: dict) -> None:
    files.write_json(files.path(workdir) / FILE, provenance)
