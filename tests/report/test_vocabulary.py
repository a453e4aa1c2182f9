"""One vocabulary: the words of the CLI, limits.json, results.json and the claims table agree."""

from __future__ import annotations

from pathlib import Path

import yaml

from bkg.stats.limits import event_limit
from bkg.stats.model import read_table1

ROOT = Path(__file__).resolve().parents[2]


def test_a_boolean_claim_reads_the_result_its_statement_names():
    # results.json said efficiency_rises: true where the claims table said the efficiency
    # does not rise: the key read by "lower at small masses" was named "rises"
    claims = yaml.safe_load((ROOT / "bkg" / "report" / "paper_claims.yaml").read_text())
    claims = claims["claims"] if isinstance(claims, dict) else claims
    checked = 0
    for c in claims:
        if str(c.get("kind")) != "true":
            continue
        key = c["result"].replace(".", "_").split("_")
        for word in ("lower", "rises", "higher", "covered"):
            if word in c["statement"].split():
                assert word in key, (c["statement"], c["result"])
                checked += 1
        assert not ({"rises", "lower"} <= set(key)), c["result"]
    assert checked >= 4


def test_the_asymptotic_calculator_is_named_as_the_cli_names_it():
    from bkg.cli import cli

    limits = cli.commands["limits"]
    choices = next(p for p in limits.params if p.name == "calculator").type.choices
    table = read_table1(ROOT / "reports" / "reference" / "table1.json")
    # auto at a large background (1.9e3 events > toys_below_background) is asymptotic
    lim = event_limit(
        table, n_mot=1e14, confidence_level=0.9, mot_uncertainty=0.0,
        signal_efficiency_uncertainty=0.0, calculator="auto", toys_below_background=10.0,
        toy_nuisance="frequentist", n_toys=100, seed=1, bands=(2,),
    )  # fmt: skip
    assert lim.calculator == "asymptotic" and lim.calculator in choices
