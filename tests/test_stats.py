"""``python -m aslx.stats``: what the pipeline makes of a record set, and its errors."""

from __future__ import annotations

from aslx import stats as stats_cli
from aslx.input import pipeline
from aslx.input import summary as summary_lib
from aslx.records.metadata import RecordSet


def test_summary_counts_the_record_set_and_its_padding(synthetic_records):
    config = pipeline.InputConfig(batch_size=4, max_frames=128, preset="kaggle75")
    summary = summary_lib.summarize(RecordSet(synthetic_records), config)
    assert summary["examples"] == 48 and summary["splits"] == {"train": 36, "val": 12}
    assert summary["val examples seen"] == 12
    assert summary["batch_shapes"]["landmarks"] == [4, 128, 75, 3]
    # Buckets cut padding: the auto bounds end at max_frames and hold less padding than T.
    assert summary["buckets"][-1] == 128
    assert 0 <= summary["bucketed_padding_share"] < summary["padding_share"] < 1
    assert set(summary["detected"]) == {"hand", "pose", "lips"}


def test_the_command_prints_one_block_and_fails_in_one_line(synthetic_records, tmp_path, capsys):
    args = ["--data", str(synthetic_records), "--max-frames", "128", "--batch-size", "4"]
    assert stats_cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "clips             48 (train 36, val 12)" in printed
    assert "in buckets" in printed and "val examples seen 12" in printed
    assert stats_cli.main(["--data", str(tmp_path / "nowhere")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "\n" not in error and "nowhere" in error
