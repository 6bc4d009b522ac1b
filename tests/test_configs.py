"""Every recipe loads, passes the config check, builds its model and names its own command;
the benchmarks' recipes (``configs/bench/``) with every ``arg`` they take."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from aslx.training import config as config_lib

ROOT = Path(__file__).resolve().parents[1]
#: Every recipe file, relative to ``configs/`` (``finetune_tiny.py``, ``bench/spelling.py``).
RECIPES = sorted(p.relative_to(ROOT / "configs").as_posix() for p in ROOT.glob("configs/**/*.py"))


def load(name: str):
    """The recipe ``configs/{name}``, imported as the programs import it (``configs.…``, from
    the project root, where recipes build on each other: ``from configs import …``)."""
    return importlib.import_module("configs." + name.removesuffix(".py").replace("/", "."))


def recipe_args(name: str) -> list:
    """``get_config``'s arguments to check: each of the recipe's ``ARGS``, else ``None``."""
    return list(getattr(load(name), "ARGS", (None,)))


def test_the_issue_recipes_exist():
    assert {
        "finetune_tiny.py",
        "finetune_small.py",
        "finetune_large.py",
        "isolated_tiny.py",
        "distill_small.py",
    } <= set(RECIPES)


@pytest.mark.parametrize(
    "name, arg", [(name, arg) for name in RECIPES for arg in recipe_args(name)]
)
def test_recipe_is_runnable(name, arg):
    module = load(name)
    assert f"--config configs/{name}" in module.__doc__
    config = module.get_config(arg)
    config.data.dir = config.data.dir or "RECORDS"
    config_lib.check(config)
    model = config_lib.model_config(config, num_landmarks=75, ctc_vocab=60, num_classes=35)
    assert model.num_layers >= 1
    assert config.augment.enabled and config_lib.augment_config(config).max_length == (
        config.data.max_frames
    )


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_names_the_machine_it_is_meant_for(name):
    """Every recipe's docstring says where it runs, ``Meant for: …``, and every TPU slice it
    names is one ``python -m aslx.aot`` compiles for."""
    from aslx.training import aot

    doc = " ".join(load(name).__doc__.split())
    meant = re.search(r"Meant for: (.+?\.)(\s|$)", doc)
    assert meant, f"configs/{name}: no 'Meant for:' line in its docstring"
    slices = re.findall(r"\bv\d+[a-z]?-\d+\b", meant.group(1))
    assert slices or "CPU" in meant.group(1) or "GPU" in meant.group(1), meant.group(1)
    assert all(s in aot.SLICES for s in slices), slices


def test_a_wrong_model_value_names_the_field():
    config = config_lib.finetune()
    config.model.size = "huge"
    with pytest.raises(config_lib.ConfigError, match="config.model: .*huge"):
        config_lib.model_config(config, num_landmarks=75)


def test_preprocessing_fields_cover_every_data_field_normalization_reads():
    """A field that ``normalization`` reads and ``PREPROCESSING_FIELDS`` lacks would let a
    pretraining read landmarks unlike its finetunes with nothing said."""
    import types

    class Reads:
        def __init__(self, data):
            self.data, self.names = data, set()

        def __getattr__(self, name):
            self.names.add(name)
            return getattr(self.data, name)

    data = config_lib.finetune().data
    for aspect in ("", "9:16"):  # without one, the aspect comes from the records
        data.camera_aspect = aspect
        reads = Reads(data)
        records = types.SimpleNamespace(camera_aspect=9 / 16)
        config_lib.normalization(types.SimpleNamespace(data=reads), records)
        assert reads.names and reads.names <= set(config_lib.PREPROCESSING_FIELDS), reads.names


@pytest.mark.parametrize("name", [name for name in RECIPES if hasattr(load(name), "ARGS")])
def test_a_recipe_refuses_an_arg_it_does_not_take_naming_its_file(name):
    with pytest.raises(ValueError, match=f"configs/{name}: .*'nonsense'"):
        load(name).get_config("nonsense")


@pytest.mark.parametrize(
    "field", ["lr", "weight_decay", "end_lr", "clip_norm", "augment.still_clip_p", "model.dropout"]
)
@pytest.mark.parametrize("value", [float("inf"), float("nan"), float("-inf")])
def test_every_float_field_refuses_nan_and_infinity(field, value):
    config = config_lib.finetune()
    config.data.dir = "RECORDS"
    *parents, name = field.split(".")
    node = config
    for parent in parents:
        node = node[parent]
    node[name] = value
    message = rf"^config\.{field}={value}: must be a finite"
    with pytest.raises(config_lib.ConfigError, match=message):
        config_lib.check(config)
