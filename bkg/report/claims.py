"""The claims table: each quantitative statement of the paper beside its reproduced value.

The paper's values are reference data (``paper_claims.yaml``, with the section
each comes from); the reproduced values are looked up in the results of a run
(a nested dict assembled by the report from samples, fits and limits).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

__all__ = [
    "Claim",
    "ClaimResult",
    "evaluate_claims",
    "load_claims",
    "lookup",
    "none_applicable",
    "render_note",
]


@dataclass(frozen=True)
class Claim:
    """One statement of the paper (reference data)."""

    id: str
    statement: str
    section: str
    paper: Any
    kind: str
    tolerance: float | None
    result: str
    #: one line beside the verdict (why it disagrees, what is compared); ``{key}`` is
    #: replaced by the run's value of ``key`` (3 significant digits)
    note: str | None = None


@dataclass(frozen=True)
class ClaimResult:
    """A claim with its reproduced value and verdict (``agrees`` None: not computed)."""

    claim: Claim
    reproduced: Any
    agrees: bool | None
    criterion: str
    applicable: bool = True
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        c = self.claim
        return {
            "id": c.id, "statement": c.statement, "section": c.section, "paper": c.paper,
            "reproduced": self.reproduced, "criterion": self.criterion,
            "verdict": {True: "agrees", False: "disagrees", None: "not computed"}[self.agrees]
            if self.applicable
            else "not applicable",
            "note": self.note,
        }  # fmt: skip


def load_claims() -> list[Claim]:
    """The paper's claims from the package's reference file."""
    text = resources.files("bkg.report").joinpath("paper_claims.yaml").read_text(encoding="utf-8")
    return [Claim(**{"tolerance": None, **entry}) for entry in yaml.safe_load(text)["claims"]]


def lookup(results: Mapping[str, Any], key: str) -> Any:
    """``results["a"]["b"]`` for ``key = "a.b"`` (None when absent)."""
    node: Any = results
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.]+)\}")


def render_note(note: str | None, results: Mapping[str, Any]) -> str:
    """A claim's note with each ``{key}`` replaced by the run's value (``?`` when absent)."""

    def value(m: re.Match[str]) -> str:
        v = lookup(results, m.group(1))
        return f"{v:.3g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else "?"

    return _PLACEHOLDER.sub(value, note or "")


def _judge(claim: Claim, value: Any) -> tuple[bool | None, str]:
    if value is None:
        return None, "-"
    if claim.kind == "true":
        return bool(value), "holds"
    if claim.tolerance is None:
        raise ValueError(
            f"claim {claim.id} of kind {claim.kind!r} needs a tolerance in paper_claims.yaml"
        )
    tol = float(claim.tolerance)
    if claim.kind == "range":
        lo, hi = claim.paper
        vlo, vhi = value
        ok = (lo - tol) <= vlo and vhi <= (hi + tol)
        return ok, f"within [{lo - tol:.3g}, {hi + tol:.3g}]"
    value = float(value)
    paper = float(claim.paper)
    if claim.kind == "value":
        return abs(value - paper) <= tol * abs(paper), f"within {100 * tol:.0f}%"
    if claim.kind == "factor":
        ok = value > 0 and paper / tol <= value <= paper * tol
        return ok, f"within a factor {tol:g}"
    if claim.kind == "upper":
        return value <= paper * tol if paper > 0 else value <= tol * 1e-12, f"<= {tol:g} x paper"
    if claim.kind == "lower":
        return value >= paper / tol, f">= paper / {tol:g}"
    raise ValueError(f"unknown claim kind {claim.kind!r} in paper_claims.yaml ({claim.id})")


#: The paper's beam energy (GeV): its claims are statements about that setup.
PAPER_BEAM_ENERGY_GEV = 160.0


def evaluate_claims(
    results: Mapping[str, Any],
    claims: list[Claim] | None = None,
    *,
    beam_energy_gev: float = PAPER_BEAM_ENERGY_GEV,
) -> list[ClaimResult]:
    """Judge every claim against the run's results.

    The claims describe the paper's 160 GeV setup; a run with another beam energy gets
    its values listed with the verdict "not applicable".
    """
    applicable = abs(beam_energy_gev - PAPER_BEAM_ENERGY_GEV) < 1e-9
    out = []
    for claim in claims if claims is not None else load_claims():
        value = lookup(results, claim.result)
        agrees, criterion = _judge(claim, value)
        note = render_note(claim.note, results)
        out.append(ClaimResult(claim, value, agrees, criterion, applicable, note))
    return out


def none_applicable(claims: Sequence[Mapping[str, Any]]) -> bool:
    """True when there are claims and none applies to the run (another beam energy)."""
    return bool(claims) and all(c["verdict"] == "not applicable" for c in claims)
