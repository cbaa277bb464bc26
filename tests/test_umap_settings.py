"""scripts/umap_settings.py: the table it chooses the umap method's settings by, read on val."""

from __future__ import annotations

import json

import pytest
import umap_settings
from helpers import write_image_npz


def test_the_table_gives_each_settings_mean_difference_and_wins_against_the_default():
    table = {
        "10, 15, 0.0": {"a": 0.5, "b": 0.75},
        "10, 5, 0.0": {"a": 0.75, "b": 0.5},  # +25 and -25 points: mean 0, one win
        "2, 15, 0.0": {"a": 0.625, "b": 0.875},  # +12.5 twice: mean +12.5, two wins
    }
    lines = umap_settings.markdown(table).splitlines()
    assert lines[0].split("|")[2:4] == [" a ", " b "]
    assert lines[2] == "| 10, 15, 0.0 | 50.00 | 75.00 | +0.00 | 0 |"
    assert lines[3] == "| 10, 5, 0.0 | 75.00 | 50.00 | +0.00 | 1 |"
    assert lines[4] == "| 2, 15, 0.0 | 62.50 | 87.50 | +12.50 | 2 |"


def test_the_default_setting_is_the_configs_and_comes_first():
    from mrdd.config import EvalConfig

    ev = EvalConfig()
    default = (ev.umap_components, ev.umap_neighbors, ev.umap_min_dist, ev.umap_knn)
    assert umap_settings.GRID[0] == default
    assert len(set(umap_settings.GRID)) == len(umap_settings.GRID)


def test_it_scores_every_setting_on_val_of_a_suite_file(tmp_path, monkeypatch, capsys):
    (tmp_path / "suite").mkdir()
    write_image_npz(tmp_path / "suite" / "tiny.npz", n=60)
    grid = ((2, 5, 0.0, "auto"), (3, 8, 0.1, "auto"), (2, 6, 0.0, "auto"))
    monkeypatch.setattr(umap_settings, "GRID", grid)
    out = tmp_path / "settings.json"
    argv = ["--datasets", "tiny", "--data-root", str(tmp_path), "--kmeans-seeds", "1"]
    chosen = ["--settings", "2, 5, 0.0, auto", "3, 8, 0.1, auto", "--umap-seeds", "2"]
    assert umap_settings.main([*argv, *chosen, "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    rows = ["2, 5, 0.0, auto", "3, 8, 0.1, auto"]  # the third row was not asked for
    assert record["split"] == "val" and list(record["table"]) == rows
    assert record["umap_seeds"] == [0, 1]
    for name, row in record["table"].items():
        seeds = record["per_umap_seed"][name]["tiny/raw_best"]
        assert list(row) == ["tiny/raw_best"] and len(seeds) == 2
        assert row["tiny/raw_best"] == pytest.approx(sum(seeds) / 2)
        assert all(0.0 <= acc <= 1.0 for acc in seeds)
    assert "| 3, 8, 0.1, auto |" in capsys.readouterr().out
    assert umap_settings.main([*argv, "--out", str(out)]) == 2  # never overwritten
    assert "exists" in capsys.readouterr().err
    unknown = ["--settings", "9, 9, 0.0, auto", "--out", str(tmp_path / "other.json")]
    assert umap_settings.main([*argv, *unknown]) == 2
    assert "not in the grid" in capsys.readouterr().err
