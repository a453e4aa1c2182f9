"""HEPData record of Table I."""

from __future__ import annotations

from bkg.report.hepdata import _table1


def test_table_i_marks_a_bound_and_gives_it_no_errors():
    row = {"stat_up": 1.0e-12, "stat_down": 5.0e-13, "syst_up": 2.0e-13, "syst_down": 1.0e-13}
    table1 = {
        "sources": [
            {"label": "Measured", "level_per_mot": 3.2e-11, "upper_bound": False, **row},
            {"label": "Bounded", "level_per_mot": 5.5e-10, "upper_bound": True, **row},
        ]
    }
    source, level = _table1(table1).variables
    assert source.values == ["Measured", "Bounded (90% CL upper limit)"]
    assert list(level.values) == [3.2e-11, 5.5e-10]
    stat, syst = level.uncertainties
    assert [tuple(v) for v in stat.values] == [(-5.0e-13, 1.0e-12), (0.0, 0.0)]
    assert [tuple(v) for v in syst.values] == [(-1.0e-13, 2.0e-13), (0.0, 0.0)]
