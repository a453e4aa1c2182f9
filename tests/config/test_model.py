"""The config's shape is written once: the schema. The dataclasses are generated from it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import bkg.config
from bkg.config import default_dict, load_config
from bkg.config.generate import load_schema, render
from bkg.config.methods import plain


def test_the_committed_model_is_what_the_schema_generates() -> None:
    # fails when schema.json changed without `python -m bkg.config.generate`
    committed = Path(bkg.config.__file__).with_name("model.py").read_text(encoding="utf-8")
    assert committed == render(load_schema())


def _attribute_paths(value: object, where: str = "") -> set[str]:
    if dataclasses.is_dataclass(value):
        out: set[str] = set()
        for f in dataclasses.fields(value):
            if f.name != "raw":
                out |= _attribute_paths(getattr(value, f.name), f"{where}.{f.name}".lstrip("."))
        return out
    if isinstance(value, Mapping):
        out = set()
        for k, v in value.items():
            out |= _attribute_paths(v, f"{where}.{k}".lstrip("."))
        return out
    return {where}


def test_attribute_paths_are_the_yaml_key_paths() -> None:
    cfg = load_config()
    assert _attribute_paths(cfg) == _attribute_paths(default_dict())
    # and the values are the YAML's (tuples for lists, floats for numbers)
    assert plain(cfg) == cfg.to_dict()
    assert (
        cfg.detector.counters.s4.offset_cm
        == default_dict()["detector"]["counters"]["s4"]["offset_cm"]
    )


def test_replacing_a_section_updates_what_the_caches_key_on() -> None:
    cfg = load_config()
    s4 = dataclasses.replace(cfg.detector.counters.s4, offset_cm=12.5)
    det = dataclasses.replace(
        cfg.detector, counters=dataclasses.replace(cfg.detector.counters, s4=s4)
    )
    moved = cfg.replace(detector=det)
    assert moved.to_dict()["detector"]["counters"]["s4"]["offset_cm"] == 12.5
    assert moved.hash != cfg.hash
    assert moved.detector.counters.s4.offset_cm == 12.5
