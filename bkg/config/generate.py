"""Write :mod:`bkg.config.model`, the config's dataclasses, from ``schema.json``.

The shape of the configuration is written once, in the JSON Schema; the typed,
frozen dataclasses are generated from it (``python -m bkg.config.generate``) and a
test checks that the committed module is what the schema gives.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["load_schema", "main", "render"]

_SCALARS = {"number": "float", "integer": "int", "boolean": "bool", "string": "str"}


def _class_name(key: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in key.split("_"))


def _scalar(node: Mapping[str, Any], where: str) -> str:
    """The Python type of a leaf (an enum takes the type of its values)."""
    kind = node.get("type")
    if kind is None and "enum" in node:
        values = node["enum"]
        kind = "string" if all(isinstance(v, str) for v in values) else "number"
    if isinstance(kind, list):
        types = [_SCALARS[k] for k in kind if k != "null"]
        return " | ".join(types) + (" | None" if "null" in kind else "")
    if kind not in _SCALARS:
        raise ValueError(f"{where}: cannot map the schema type {kind!r} to Python")
    return _SCALARS[kind]


class _Writer:
    """Collects one dataclass per schema object, children before their parent."""

    def __init__(self) -> None:
        self.classes: list[str] = []
        self.names: dict[str, str] = {}

    def annotation(self, node: Mapping[str, Any], key: str, where: str) -> str:
        kind = node.get("type")
        if kind == "object" and "properties" in node:
            return self.dataclass(node, key, where)
        if kind == "object" and isinstance(node.get("additionalProperties"), Mapping):
            entry = node["additionalProperties"]
            return f"Mapping[str, {self.annotation(entry, key + '_entry', where + '.*')}]"
        if kind == "array":
            item = self.annotation(node["items"], key, where + "[]")
            if node.get("minItems") == node.get("maxItems") is not None:
                return f"tuple[{', '.join([item] * node['maxItems'])}]"
            return f"tuple[{item}, ...]"
        return _scalar(node, where)

    def dataclass(self, node: Mapping[str, Any], key: str, where: str) -> str:
        name = node.get("x-class") or _class_name(key)
        if name in self.names:
            raise ValueError(f"{where}: class {name} is also {self.names[name]}; set x-class")
        self.names[name] = where
        lines = [f"{k}: {self.annotation(sub, k, _join(where, k))}" for k, sub in _props(node)]
        if where == "":
            lines.append(
                "raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)"
            )
        bases = f"(methods.{node['x-mixin']})" if "x-mixin" in node else ""
        doc = node.get("x-doc") or f"The ``{where}`` section of the config."
        body = "\n".join(f"    {line}" for line in lines)
        self.classes.append(
            f'@dataclass(frozen=True)\nclass {name}{bases}:\n    """{doc}"""\n\n{body}\n'
        )
        return name


def _isort(name: str) -> tuple[int, str]:
    """ruff's (isort's) order of ``__all__``: CONSTANTS, then Classes, then the rest."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def _props(node: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield from node["properties"].items()


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def render(schema: Mapping[str, Any]) -> str:
    """The source of :mod:`bkg.config.model` for ``schema``."""
    writer = _Writer()
    writer.dataclass(schema, "config", "")
    head = (
        '"""The configuration\'s dataclasses, generated from schema.json: do not edit.\n\n'
        "Regenerate with ``python -m bkg.config.generate`` after changing the schema;\n"
        "attribute paths are the YAML key paths (``cfg.detector.counters.s4.offset_cm``).\n"
        '"""\n\n'
        "from __future__ import annotations\n\n"
        "from collections.abc import Mapping\n"
        "from dataclasses import dataclass, field\n"
        "from typing import Any\n\n"
        "from bkg.config import methods\n\n"
        "__all__ = [\n" + "".join(f'    "{n}",\n' for n in sorted(writer.names, key=_isort)) + "]\n"
    )
    return head + "\n\n" + "\n\n".join(writer.classes)


def load_schema() -> dict[str, Any]:
    """The packaged ``schema.json`` as plain data (the config's shape and ranges)."""
    text = resources.files("bkg.config").joinpath("schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def main() -> None:
    """Write ``model.py`` beside this module from the packaged ``schema.json``."""
    target = Path(__file__).with_name("model.py")
    target.write_text(render(load_schema()), encoding="utf-8")
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
