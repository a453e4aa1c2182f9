"""Configuration: YAML overlaid on the built-in NA64mu default, validated, frozen.

A user's YAML only needs the keys it changes; it is merged over
``default.yaml`` and the result is validated against ``schema.json`` (JSON
Schema, shipped as package data) plus the semantic checks a schema cannot
express. Every problem is reported at once, each with its key path.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import re
import typing
from collections import abc
from collections.abc import Collection, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from bkg.config import model
from bkg.config.generate import load_schema
from bkg.config.methods import FrozenMap
from bkg.config.model import Config
from bkg.errors import ConfigError

__all__ = [
    "Config",
    "check_report_name",
    "config_hash",
    "default_dict",
    "load_config",
    "validate_dict",
]

#: Largest config file read (bytes): the default is 7 kB; a config only lists changes.
MAX_CONFIG_BYTES = 1 << 20
#: Deepest nesting of mappings and lists in a config (the default nests 5 levels).
MAX_CONFIG_DEPTH = 32


class _Loader(yaml.SafeLoader):
    """Safe YAML loader that reads ``1e11`` as a float (YAML 1.1 wants ``1.0e+11``),
    refuses a key given twice in one mapping (PyYAML keeps the last one silently) and
    refuses aliases."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        # an alias (*name) can make a config refer to itself or blow up exponentially
        # (a "billion laughs" file); a configuration has no need of one
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not supported in a config", event.start_mark
            )
        # a deeply nested file would exhaust Python's recursion limit (a 3000-line
        # RecursionError at 330 levels): refuse it at a depth no config needs
        depth = getattr(self, "_bkg_depth", 0)
        if depth >= MAX_CONFIG_DEPTH:
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                f"nested more than {MAX_CONFIG_DEPTH} levels deep (a config needs at most 5)",
                event.start_mark,
            )
        self._bkg_depth = depth + 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._bkg_depth = depth

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    """Parse YAML text with the project's loader (floats such as ``1e11`` allowed)."""
    return yaml.load(text, Loader=_Loader)


def default_dict() -> dict[str, Any]:
    """The built-in NA64mu default as plain data."""
    text = resources.files("bkg.config").joinpath("default.yaml").read_text(encoding="utf-8")
    return parse_yaml(text)


def config_hash(raw: Mapping[str, Any]) -> str:
    """sha256 hex digest of a config's canonical JSON (sorted keys)."""
    blob = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict) and key != "references":
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<top level>"


#: What a report name may be: it becomes the folder reports/<name>.
REPORT_NAME_RULE = (
    "ASCII letters, digits, '_', '-' and '.', not starting with '.', at most 128 characters"
)
_REPORT_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}")


def _report_name_problem(name: object) -> str | None:
    if isinstance(name, str) and _REPORT_NAME.fullmatch(name):
        return None
    return (
        f"{name!r} is not a valid report name (the folder reports/<name>): use {REPORT_NAME_RULE}"
    )


def check_report_name(name: str, *, source: str = "name") -> None:
    """Check that ``name`` can be the report folder ``reports/<name>``.

    Args:
        name: the report name (the config's ``name`` or the CLI's ``--name``).
        source: what the one-line message starts with (e.g. ``"--name"``).

    Raises:
        ConfigError: the name is empty, ``.``/``..``, starts with '.', or holds other
            characters than ASCII letters, digits, '_', '-' and '.'.

    Example:
        >>> check_report_name("na64mu-2022.v1")
        >>> check_report_name("../x", source="--name")
        Traceback (most recent call last):
        ...
        bkg.errors.ConfigError: --name: '../x' is not a valid report name (the folder reports/<name>): use ASCII letters, digits, '_', '-' and '.', not starting with '.', at most 128 characters
    """
    problem = _report_name_problem(name)
    if problem is not None:
        raise ConfigError(problem, source=source)


def _value_problems(value: Any, parts: tuple[Any, ...], problems: dict[str, str]) -> None:
    """Add (key path -> problem) for the keys that are not strings and the NaN/inf below ``value``."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = _path((*parts, str(key)))
            if not isinstance(key, str):
                problems[where] = (
                    f"{where}: the key {key!r} is not a string ({type(key).__name__}); "
                    f"quote it in YAML: '{key}'"
                )
            _value_problems(item, (*parts, str(key)), problems)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _value_problems(item, (*parts, i), problems)
    elif isinstance(value, float) and not math.isfinite(value):
        problems[_path(parts)] = f"{_path(parts)}: {value} is not a finite number"
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > 1e300:
        problems[_path(parts)] = f"{_path(parts)}: an integer beyond 1e300 is too large"


def _input_problems(raw: Mapping[str, Any]) -> dict[str, str]:
    """Key path -> problem for what the schema does not see: non-string keys, NaN/inf, the name."""
    problems: dict[str, str] = {}
    _value_problems(raw, (), problems)
    problem = _report_name_problem(raw.get("name"))
    if isinstance(raw.get("name"), str) and problem is not None:
        problems["name"] = f"name: {problem}"
    return problems


def _str_keys(value: Any) -> Any:
    """``value`` with every mapping key made a string (what JSON Schema can validate)."""
    if isinstance(value, Mapping):
        return {str(k): _str_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_str_keys(v) for v in value]
    return value


def _to_integers(value: Any, schema: Mapping[str, Any]) -> Any:
    """``value`` with the integral floats (``6.0e1``) the schema wants as integers made ints."""
    if schema.get("type") == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {
            k: _to_integers(v, props.get(k, extra if isinstance(extra, Mapping) else {}))
            for k, v in value.items()
        }
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [_to_integers(v, schema["items"]) for v in value]
    return value


def _schema_problems(raw: Any, *, skip: Collection[str] = ()) -> list[str]:
    """Every schema violation, one line each; none at the key paths in ``skip`` (told already)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema())
    problems = []
    for err in sorted(validator.iter_errors(raw), key=lambda e: list(map(str, e.absolute_path))):
        where = _path(err.absolute_path)
        if where in skip:
            continue
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            allowed = ", ".join(sorted(err.schema.get("properties", {})))
            for key in extra:
                key_path = f"{where}.{key}" if where != "<top level>" else key
                if key_path not in skip:
                    problems.append(f"{key_path}: unknown key (allowed here: {allowed})")
            continue
        if err.validator in ("maximum", "maxItems", "maxLength"):
            limit, got = err.validator_value, err.instance
            size = (
                f"{got:g}"
                if err.validator == "maximum"
                else f"{len(got)} " + ("items" if err.validator == "maxItems" else "characters")
            )
            problems.append(
                f"{where}: {size} is more than the maximum {limit:g} "
                "(docs/guarantees.md, Limits on sizes)"
            )
            continue
        problems.append(f"{where}: {err.message}")
    return problems


def _semantic_problems(raw: Mapping[str, Any]) -> list[str]:
    problems = []
    e0 = float(raw["beam"]["energy_gev"])
    box = raw["signal_box"]
    if box["e_mu_out_max_gev"] >= e0:
        problems.append(
            f"signal_box.e_mu_out_max_gev: {box['e_mu_out_max_gev']} GeV must be below the beam "
            f"energy beam.energy_gev = {e0} GeV"
        )
    if box["e_cal_max_gev"] >= e0:
        problems.append(
            f"signal_box.e_cal_max_gev: {box['e_cal_max_gev']} GeV must be below the beam energy {e0} GeV"
        )
    for where, (lo, hi) in _intervals(raw, load_schema()):
        if not lo < hi:
            problems.append(f"{where}: expected [low, high] with low < high, got [{lo}, {hi}]")
    if not raw["beam"]["halo_energy_min_gev"] < e0:
        problems.append(
            f"beam.halo_energy_min_gev: {raw['beam']['halo_energy_min_gev']} GeV must be below "
            f"the beam energy beam.energy_gev = {e0} GeV"
        )
    vhcal = raw["detector"]["vhcal"]
    if any(h >= w for h, w in zip(vhcal["hole_cm"], vhcal["size_cm"], strict=True)):
        problems.append(
            f"detector.vhcal.hole_cm: the hole {vhcal['hole_cm']} cm must be smaller than the "
            f"detector detector.vhcal.size_cm = {vhcal['size_cm']} cm"
        )
    lo, hi = raw["selection"]["p_in_window_gev"]
    if lo < hi and not lo <= e0 <= hi:
        problems.append(
            f"selection.p_in_window_gev: [{lo}, {hi}] GeV does not contain the beam energy {e0} GeV"
        )
    if raw["selection"]["p_out_max_gev"] >= e0:
        problems.append(f"selection.p_out_max_gev: must be below the beam energy {e0} GeV")
    grid = raw["signal"]["masses_gev"]
    if grid["min"] > grid["max"] or (grid["min"] == grid["max"] and grid["points"] > 1):
        problems.append(
            f"signal.masses_gev: expected min < max, got min = {grid['min']}, max = {grid['max']}"
        )
    masses = list(raw["samples"]["signal_masses_gev"])
    if masses != sorted(set(masses)):
        problems.append("samples.signal_masses_gev: expected strictly increasing masses")
    problems += _mass_limit_problems(raw, e0)
    ref = raw["g_minus_2"]["reference"]
    if ref not in raw["g_minus_2"]["references"]:
        known = ", ".join(sorted(raw["g_minus_2"]["references"]))
        problems.append(
            f"g_minus_2.reference: {ref!r} is not one of g_minus_2.references ({known})"
        )
    return problems


def _intervals(value: Any, schema: Mapping[str, Any], parts: tuple[str, ...] = ()) -> Any:
    """(key path, [low, high]) of every key the schema marks ``"x-interval": true``."""
    if schema.get("x-interval") is True and isinstance(value, list) and len(value) == 2:
        yield _path(parts), value
    if isinstance(value, Mapping):
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                yield from _intervals(value[key], sub, (*parts, key))


def interval_keys() -> list[str]:
    """The key paths of every [low, high] interval of the config (checked low < high)."""
    return [where for where, _ in _intervals(default_dict(), load_schema())]


def _mass_limit_problems(raw: Mapping[str, Any], e0: float) -> list[str]:
    """Z' masses the beam cannot make: x = E_Z'/E0 runs from m/E0 to 1 - m_mu/E0 (bkg.sim.signal)."""
    from bkg.physics.constants import M_MU_GEV

    limit = e0 - M_MU_GEV
    why = (
        f"must be below E0 - m_mu = {limit:.4f} GeV for the {e0:g} GeV beam "
        "(x = E_Z'/E0 runs from m/E0 to 1 - m_mu/E0)"
    )
    grid = raw["signal"]["masses_gev"]
    problems = [
        f"signal.masses_gev.{key}: {grid[key]} GeV {why}"
        for key in ("min", "max")
        if grid[key] >= limit
    ]
    too_heavy = [m for m in raw["samples"]["signal_masses_gev"] if m >= limit]
    if too_heavy:
        listed = ", ".join(f"{m:g}" for m in too_heavy)
        problems.append(f"samples.signal_masses_gev: {listed} GeV {why}")
    return problems


#: Keys given in GeV for the 160 GeV default that follow the beam energy when a
#: config changes ``beam.energy_gev`` without setting them (paper: E'_mu <= E0/2).
ENERGY_SCALED_KEYS = (
    ("beam", "momentum_window_gev"),
    ("selection", "p_in_window_gev"),
    ("selection", "p_out_max_gev"),
    ("signal_box", "e_mu_out_max_gev"),
)


def _scale_energy_cuts(raw: dict[str, Any], overlay: Mapping[str, Any]) -> None:
    beam = overlay.get("beam")
    if not isinstance(beam, Mapping) or "energy_gev" not in beam:
        return
    try:
        factor = float(raw["beam"]["energy_gev"]) / float(default_dict()["beam"]["energy_gev"])
    except (TypeError, ValueError):
        return  # the schema check reports the bad value
    if not (math.isfinite(factor) and factor > 0):
        return  # the schema reports the energy; scaled cuts would only echo it
    for section, key in ENERGY_SCALED_KEYS:
        given = overlay.get(section)
        if (isinstance(given, Mapping) and key in given) or not isinstance(raw[section], dict):
            continue  # a section that is not a mapping: the schema check reports it
        value = raw[section][key]
        raw[section][key] = (
            [v * factor for v in value] if isinstance(value, list) else value * factor
        )


def validate_dict(overlay: Any, *, source: str = "config") -> dict[str, Any]:
    """Merge ``overlay`` over the default, validate, and return the effective dict.

    Raises:
        ConfigError: listing every problem, each with its key path.
    """
    if overlay is None:
        overlay = {}
    if not isinstance(overlay, Mapping):
        raise ConfigError(
            f"expected a mapping of keys at the top level, got {type(overlay).__name__}",
            source=source,
        )
    raw = _merge(default_dict(), overlay)
    _scale_energy_cuts(raw, overlay)
    told = _input_problems(raw)
    problems = [*told.values(), *_schema_problems(_str_keys(raw), skip=told)]
    if not problems:
        problems = _semantic_problems(raw)
    if problems:
        raise ConfigError(problems, source=source)
    return _to_integers(raw, load_schema())


def _convert(value: Any, hint: Any) -> Any:
    """``value`` (validated plain data) as the type ``hint`` of a field of :mod:`bkg.config.model`."""
    if dataclasses.is_dataclass(hint):
        return _build(hint, value)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        items = args[:1] * len(value) if args[-1:] == (Ellipsis,) else args
        return tuple(_convert(v, h) for v, h in zip(value, items, strict=True))
    if origin is abc.Mapping:
        return FrozenMap({k: _convert(v, args[1]) for k, v in value.items()})
    if hint is float:
        return float(value)
    return value  # int, bool, str, str | None: the schema checked them


def _build(cls: Any, raw: Mapping[str, Any]) -> Any:
    """The dataclass ``cls`` of :mod:`bkg.config.model` from the validated section ``raw``.

    Generic: the shape is the schema's (the generated dataclasses); nothing here names a key.
    """
    hints = typing.get_type_hints(cls, vars(model))
    fields = [f.name for f in dataclasses.fields(cls) if f.name in raw]
    values = {name: _convert(raw[name], hints[name]) for name in fields}
    return cls(**values, raw=raw) if cls is Config else cls(**values)


def from_dict(overlay: Mapping[str, Any] | None = None, *, source: str = "config") -> Config:
    """Build a :class:`Config` from an overlay dict (``None``: the default)."""
    return _build(Config, validate_dict(overlay, source=source))


def read_limited(path: Path, *, source: str, limit: int = MAX_CONFIG_BYTES) -> str:
    """The text of a regular file of at most ``limit`` bytes, read without following a
    device or a pipe (``/dev/zero`` or a FIFO would never end).

    Raises:
        ConfigError: missing, not a regular file, larger than ``limit``, unreadable or
            not UTF-8 text.
    """
    import os
    import stat

    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ConfigError("file not found; give an existing YAML file", source=source) from None
    except OSError as exc:
        raise ConfigError(f"cannot read it ({exc.strerror})", source=source) from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise ConfigError(f"{kind}; give a YAML file", source=source)
    too_big = ConfigError(
        f"larger than {limit // 1024} kB; a config lists only the keys it changes "
        "(the built-in default is 7 kB)",
        source=source,
    )
    if info.st_size > limit:
        raise too_big
    try:
        # O_NONBLOCK: if the path became a FIFO since the stat, opening it does not wait
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read it ({exc.strerror})", source=source) from None
    if len(data) > limit:
        raise too_big
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("cannot read it as text (not UTF-8)", source=source) from None


def load_config(path: str | Path | None = None, **overrides: Any) -> Config:
    """Load a YAML config file (or the built-in default when ``path`` is None).

    Args:
        path: YAML file with the keys to change relative to the default.
        **overrides: top-level keys applied after the file (e.g. ``n_mot=1e10``).

    Raises:
        ConfigError: the file is missing, not YAML, or not valid.
    """
    overlay: Any = {}
    source = "built-in default"
    if path is not None:
        p = Path(path)
        source = str(p)
        text = read_limited(p, source=source)
        try:
            overlay = parse_yaml(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or "syntax error"
            raise ConfigError(f"not valid YAML{where}: {problem}", source=source) from None
        if overlay is None:
            overlay = {}
        if not isinstance(overlay, Mapping):
            raise ConfigError(
                f"expected a mapping of keys at the top level, got {type(overlay).__name__}",
                source=source,
            )
    if overrides:
        overlay = _merge(dict(overlay), overrides)
    return from_dict(overlay, source=source)
