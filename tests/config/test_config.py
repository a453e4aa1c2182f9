"""Configuration: default, overlays, schema and semantic errors with key paths."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bkg.config import check_report_name, default_dict, from_dict, load_config
from bkg.errors import ConfigError


def test_default_describes_the_paper_setup(default_config):
    cfg = default_config
    # Paper Sec. II: 160 GeV M2 beam, 40 X0 ECAL (6x5), VHCAL 5 lambda_I, 2 HCAL x 7.5 lambda_I.
    assert cfg.beam.energy_gev == 160.0
    assert cfg.detector.ecal.thickness_x0 == 40.0
    assert cfg.detector.ecal.cells == (6, 5)
    assert cfg.detector.vhcal.thickness_lambda == 5.0
    assert cfg.detector.hcal.modules == 2 and cfg.detector.hcal.module_lambda == 7.5
    assert cfg.detector.hcal.size_cm == (120.0, 60.0)
    assert cfg.detector.spectrometers.ms2.field_tm == 1.4
    assert cfg.detector.spectrometers.ms2.micromegas == 6
    # Measured inputs with documented defaults (paper Sec. III.C).
    assert cfg.beam.pi_per_mu == 1e-6 and cfg.beam.k_per_pi == 0.03
    assert cfg.detector.spectrometers.micromegas_inefficiency == 0.02
    assert cfg.detector.spectrometers.ms2.resolution_rel == 0.03
    assert cfg.signal_box.e_cal_max_gev == 20.0 and cfg.signal_box.e_mu_out_max_gev == 80.0
    assert cfg.n_mot == 1e11 and cfg.statistics.confidence_level == 0.90
    assert cfg.g_minus_2.chosen().delta_a_mu == pytest.approx(251e-11, abs=0.0)
    assert set(cfg.g_minus_2.references) == {"2021", "2025"}


def test_config_is_frozen(default_config):
    with pytest.raises(dataclasses.FrozenInstanceError):
        default_config.n_mot = 1.0  # type: ignore[misc]


def test_overlay_changes_only_given_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("beam:\n  energy_gev: 100\nn_mot: 1e12\ng_minus_2:\n  reference: '2025'\n")
    cfg = load_config(path)
    assert cfg.beam.energy_gev == 100.0
    assert cfg.n_mot == 1e12  # '1e12' is a float for our loader (YAML 1.1 would say string)
    assert cfg.beam.spot_sigma_x_cm == 0.9
    # The 100 GeV option moves the energy cuts with the beam: E'_mu <= E0/2 (paper Sec. II).
    assert cfg.signal_box.e_mu_out_max_gev == pytest.approx(50.0)
    assert cfg.selection.p_in_window_gev == pytest.approx((87.5, 112.5))
    assert cfg.g_minus_2.chosen().delta_a_mu == pytest.approx(38e-11, abs=0.0)


def test_hash_is_stable_and_sensitive():
    a, b = from_dict({}), from_dict({})
    assert a.hash == b.hash
    assert from_dict({"seed": 1}).hash != a.hash


@pytest.mark.bad_input
def test_every_problem_listed_with_key_path():
    with pytest.raises(ConfigError) as err:
        from_dict(
            {
                "n_mot": -1,
                "beam": {"spot_sigma_x_cm": "wide", "colour": 1},
                "statistics": {"confidence_level": 1.5},
            }
        )
    text = "; ".join(err.value.problems)
    assert len(err.value.problems) == 4
    # the one-line message names the count, the first problem and where to see them all
    assert str(err.value).startswith("config: 4 problems, the first: ")
    assert "`bkg config validate FILE`" in str(err.value)  # no file behind from_dict
    for key in (
        "n_mot",
        "beam.spot_sigma_x_cm",
        "beam.colour: unknown key",
        "statistics.confidence_level",
    ):
        assert key in text


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("overlay", "key"),
    [
        ({"signal_box": {"e_mu_out_max_gev": 170.0}}, "signal_box.e_mu_out_max_gev"),
        ({"signal": {"masses_gev": {"min": 1.0, "max": 0.001, "points": 5}}}, "signal.masses_gev"),
        (
            {"signal": {"masses_gev": {"min": 0.001, "max": 1.0, "points": 0}}},
            "signal.masses_gev.points",
        ),
        ({"samples": {"signal_masses_gev": [0.1, 0.01]}}, "samples.signal_masses_gev"),
        ({"g_minus_2": {"reference": "2030"}}, "g_minus_2.reference"),
        ({"selection": {"p_in_window_gev": [180.0, 140.0]}}, "selection.p_in_window_gev"),
    ],
)
def test_semantic_and_grid_errors(overlay, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        from_dict(overlay)


@pytest.mark.bad_input
def test_not_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("beam:\n  energy_gev: [160\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML at line \d+"):
        load_config(path)


@pytest.mark.bad_input
def test_top_level_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(path)


@pytest.mark.bad_input
def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=5)
)
_keys = st.sampled_from([*default_dict().keys(), "bogus", "energy_gev", "n_mot"])


@pytest.mark.bad_input
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        _keys, st.one_of(_leaf, st.dictionaries(st.text(max_size=8), _leaf, max_size=3)), max_size=4
    )
)
def test_loader_never_crashes_with_a_foreign_exception(overlay):
    # Property (issue 8): any overlay either validates or raises ConfigError, never anything else.
    try:
        from_dict(overlay)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) for p in exc.problems)


NAN, INF = float("nan"), float("inf")


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("overlay", "problem"),
    [
        ({"n_mot": NAN}, "n_mot: nan"),
        ({"n_mot": INF}, "n_mot: inf"),
        ({"beam": {"halo_fraction": NAN}}, "beam.halo_fraction: nan"),
        ({"beam": {"halo_fraction": INF}}, "beam.halo_fraction: inf"),
        ({"selection": {"p_in_window_gev": [NAN, 180.0]}}, "selection.p_in_window_gev[0]: nan"),
        ({"statistics": {"confidence_level": NAN}}, "statistics.confidence_level: nan"),
        ({"samples": {"signal_masses_gev": [0.1, -INF]}}, "samples.signal_masses_gev[1]: -inf"),
    ],
)
def test_non_finite_numbers_rejected_with_key_path(overlay, problem):
    with pytest.raises(ConfigError) as err:
        from_dict(overlay)
    # one problem per bad value (not also a schema complaint about the same key)
    assert err.value.problems == [f"{problem} is not a finite number"]


def test_integral_floats_become_integers(tmp_path):
    # YAML '6.0e1' is a float; the schema's integers accept it, the Config must hold an int
    path = tmp_path / "c.yaml"
    path.write_text(
        "signal: {masses_gev: {points: 6.0e1}}\n"
        "samples: {hadron_events: 3.0e4, chunk_size: 1.0e5}\n"
        "detector: {ecal: {cells: [6.0, 5]}}\n"
    )
    cfg = load_config(path)
    assert cfg.signal.masses_gev.points == 60 and isinstance(cfg.signal.masses_gev.points, int)
    assert isinstance(cfg.samples.hadron_events, int) and cfg.samples.hadron_events == 30000
    assert isinstance(cfg.samples.chunk_size, int)
    assert cfg.detector.ecal.cells == (6, 5) and isinstance(cfg.detector.ecal.cells[0], int)
    assert len(cfg.signal.masses_gev.values()) == 60
    # a float that is not integral is still a schema error
    with pytest.raises(ConfigError, match=r"signal\.masses_gev\.points: 60\.5 is not of type"):
        from_dict({"signal": {"masses_gev": {"points": 60.5}}})


@pytest.mark.bad_input
@pytest.mark.parametrize("text", ["- 1\n- 2\n", "42\n", "just words\n"])
def test_top_level_not_a_mapping_with_overrides(tmp_path, text):
    # the CLI passes overrides (--n-mot, ...): the file must not be replaced by {} then
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"bad\.yaml: expected a mapping of keys"):
        load_config(path, n_mot=1e10)


@pytest.mark.bad_input
def test_integer_keys_reported_with_their_path(tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text("1: 2\nbeam: {3: 4}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert sorted(err.value.problems) == [
        "1: the key 1 is not a string (int); quote it in YAML: '1'",
        "beam.3: the key 3 is not a string (int); quote it in YAML: '3'",
    ]
    path.write_text(
        "g_minus_2:\n  reference: '2030'\n"
        "  references: {2030: {delta_a_mu: 1.0e-9, sigma: 1.0e-10, source: x}}\n"
    )
    with pytest.raises(ConfigError, match=r"g_minus_2\.references\.2030: the key 2030 is not"):
        load_config(path)


@pytest.mark.bad_input
def test_section_replaced_by_a_scalar_with_a_new_beam_energy():
    # the energy scaling must not index a section that is not a mapping
    with pytest.raises(ConfigError, match=r"selection: 5 is not of type 'object'"):
        from_dict({"beam": {"energy_gev": 100}, "selection": 5})


@pytest.mark.bad_input
@pytest.mark.parametrize("name", [".", "..", "a/b", "../up", ".hidden", "", "a b", "x" * 129, "é"])
def test_report_name_must_be_a_plain_folder_name(name):
    with pytest.raises(ConfigError, match=r"name: .* is not a valid report name") as err:
        from_dict({"name": name})
    assert len(err.value.problems) == 1
    with pytest.raises(ConfigError, match=r"^--name: .* not starting with '\.'"):
        check_report_name(name, source="--name")


@pytest.mark.parametrize("name", ["run-1.v2", "A_b", "x" * 128, "2022"])
def test_report_name_accepts_letters_digits_dot_dash_underscore(name):
    check_report_name(name)
    assert from_dict({"name": name}).name == name


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("overlay", "key"),
    [
        ({"samples": {"signal_masses_gev": [0.5, 200.0]}}, "samples.signal_masses_gev: 200 GeV"),
        ({"samples": {"signal_masses_gev": [160.0]}}, "samples.signal_masses_gev: 160 GeV"),
        (
            {"signal": {"masses_gev": {"min": 0.01, "max": 500, "points": 5}}},
            "signal.masses_gev.max: 500 GeV",
        ),
        (
            {"beam": {"energy_gev": 100}, "samples": {"signal_masses_gev": [99.95]}},
            "samples.signal_masses_gev: 99.95 GeV must be below E0 - m_mu = 99.8943 GeV",
        ),
    ],
)
def test_signal_masses_the_beam_cannot_make(overlay, key):
    # bkg.sim.signal draws x = E_Z'/E0 in (m/E0, 1 - m_mu/E0): empty for m >= E0 - m_mu
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        from_dict(overlay)


def test_signal_masses_just_below_the_kinematic_limit_are_valid():
    cfg = from_dict(
        {"samples": {"signal_masses_gev": [1.0, 159.8]}, "signal": {"masses_gev": {"max": 159.0}}}
    )
    assert cfg.samples.signal_masses_gev[-1] == 159.8


def test_doctests():
    import doctest

    import bkg.config

    assert doctest.testmod(bkg.config).failed == 0


def test_a_key_given_twice_is_an_error_with_its_line(tmp_path):
    from bkg.config import load_config
    from bkg.errors import ConfigError

    path = tmp_path / "dup.yaml"
    path.write_text("beam:\n  energy_gev: 160\n  energy_gev: 100\n")
    with pytest.raises(ConfigError, match=r"line 3.*'energy_gev' is given twice"):
        load_config(path)
