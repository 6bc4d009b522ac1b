"""``python -m aslx.report clip`` draws real pictures and says clearly what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from aslx.formats import kaggle_fingerspelling
from aslx.records import writer
from aslx.report import __main__ as report
from aslx.vocab import KAGGLE_CHARACTERS
from tests.conftest import random_clip


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(0)
    phrases = [(i, 0, "abc", random_clip(rng, 12 + i)) for i in range(4)]
    kaggle_fingerspelling.write(
        root / "raw", phrases, vocabulary={c: i for i, c in enumerate(KAGGLE_CHARACTERS)}
    )
    writer.ingest("kaggle-fingerspelling", root / "raw", root / "records", progress=False)
    return root / "records"


def test_clip_picture_before_and_after_augmentation(records, tmp_path):
    import matplotlib.image

    out = tmp_path / "clip.png"
    args = [
        "clip",
        "--data",
        str(records),
        "--index",
        "2",
        "--preset",
        "kaggle75",
        "--augment",
        "--frames",
        "4",
        "--max-frames",
        "32",
        "--out",
        str(out),
    ]
    assert report.main(args) == 0
    image = matplotlib.image.imread(out)
    assert image.shape[0] > 200 and image.shape[1] > 400  # two rows of four frames
    assert image[..., :3].std() > 0.05  # something was drawn


def test_clip_errors_name_the_problem(records, tmp_path, capsys):
    out = str(tmp_path / "x.png")
    assert report.main(["clip", "--data", str(records), "--index", "99", "--out", out]) == 2
    assert "outside the 4 clips" in capsys.readouterr().err
    assert report.main(["clip", "--data", str(records), "--split", "val", "--out", out]) == 2
    assert "no split 'val'" in capsys.readouterr().err
    assert report.main(["clip", "--data", str(tmp_path), "--out", out]) == 2
    assert "aslx.ingest" in capsys.readouterr().err
