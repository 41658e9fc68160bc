"""scripts/probe_refinement.py: its setting selection is checked before any model or data is loaded."""
import pytest
from conftest import load_script


def test_unknown_setting_names_are_refused_with_the_known_ones(capsys):
    script = load_script("probe_refinement")
    with pytest.raises(SystemExit) as stop:
        script.main(["--checkpoint", "missing.pt", "--only", "one pass", "three passes"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--only takes setting names" in err and "'one pass'" in err


def test_filter_scan_needs_its_source_setting(capsys):
    script = load_script("probe_refinement")
    with pytest.raises(SystemExit) as stop:
        script.main(["--checkpoint", "missing.pt", "--only", "one pass", "--filter-scan"])
    assert stop.value.code == 2
    assert script.SCAN_FROM in capsys.readouterr().err
