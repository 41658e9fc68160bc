"""scripts/lineage_curve.py: segments of learning curves chain into cumulative steps, hours and core hours."""
import csv
from pathlib import Path

import pytest
from conftest import load_script

REPO = Path(__file__).resolve().parents[1]
HEADER = "step,epoch,train_hours,audio_hours_seen,audio_sec_per_wall_sec,val_si_snri,val_loss,lr\n"


def write_curve(path, rows):
    path.write_text(HEADER + "".join(f"{s},0,{h},{a},1,{v},{-v},1e-4\n" for s, h, a, v in rows))


def segment(curve, first, last, cores, stage="s"):
    return {"stage": stage, "curve": curve, "first_step": str(first), "last_step": str(last), "cores": str(cores),
            "val_set": "held-out"}


def test_segments_chain_hours_by_cores_and_skip_rows_past_the_chosen_step(tmp_path):
    # run a: 1 core up to step 100 (1 h), 2 cores to step 200 (1.5 h more), continued past the kept step 200
    write_curve(tmp_path / "a.csv", [(100, 1.0, 2.0, 3.0), (200, 2.5, 4.0, 4.0), (300, 3.0, 5.0, 9.0)])
    # run b: started from a's step-200 weights, its own counts
    write_curve(tmp_path / "b.csv", [(50, 0.25, 1.0, 4.5), (100, 0.5, 2.0, 5.0)])
    rows = load_script("lineage_curve").chain([segment("a.csv", 0, 100, 1), segment("a.csv", 101, 200, 2),
                                segment("b.csv", 0, 100, 2)], tmp_path)
    assert [r["total_steps"] for r in rows] == [100, 200, 250, 300]
    assert [r["wall_hours"] for r in rows] == [1.0, 2.5, 2.75, 3.0]
    assert [r["core_hours"] for r in rows] == [1.0, 4.0, 4.5, 5.0]
    assert [r["audio_hours"] for r in rows] == [2.0, 4.0, 5.0, 6.0]
    assert [r["val_si_snri"] for r in rows] == [3.0, 4.0, 4.5, 5.0]  # a's step 300 (9.0) was not kept


def test_missing_curve_and_empty_segment_name_the_file(tmp_path):
    script = load_script("lineage_curve")
    with pytest.raises(FileNotFoundError, match="gone.csv"):
        script.chain([segment("gone.csv", 0, 10, 1)], tmp_path)
    write_curve(tmp_path / "a.csv", [(100, 1.0, 2.0, 3.0)])
    with pytest.raises(ValueError, match="a.csv: no rows between steps 200 and 300"):
        script.chain([segment("a.csv", 200, 300, 1)], tmp_path)


def test_shipped_lineage_manifest_chains_and_its_curve_file_matches(tmp_path):
    script = load_script("lineage_curve")
    manifest = REPO / "results" / "default_lineage_runs.csv"
    rows = script.chain(list(csv.DictReader(manifest.open())), REPO)
    committed = list(csv.DictReader((REPO / "results" / "default_lineage_curve.csv").open()))
    assert len(committed) == len(rows)
    assert float(committed[-1]["core_hours"]) == rows[-1]["core_hours"]
    assert [r["total_steps"] for r in rows] == sorted(r["total_steps"] for r in rows)


def test_command_line_refuses_a_missing_manifest_or_columns_in_one_line(tmp_path, capsys):
    script = load_script("lineage_curve")
    assert script.main([str(tmp_path / "none.csv")]) == 2
    assert "none.csv: manifest not found" in capsys.readouterr().err
    (tmp_path / "m.csv").write_text("stage,curve\nx,a.csv\n")
    assert script.main([str(tmp_path / "m.csv")]) == 2
    assert "missing columns cores, first_step, last_step, val_set" in capsys.readouterr().err
