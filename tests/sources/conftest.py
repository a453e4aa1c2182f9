"""Synthetic samples (seeded) written with NtupleWriter, with a MANIFEST.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bkg.ntuple import SCHEMAS, NtupleWriter, sha256_file


def response(rng: np.random.Generator, n: int, *, e0: float = 160.0) -> dict[str, np.ndarray]:
    """Muon-like detector response: Gaussian 3% error of the curvature 1/p, with a small Laplace tail."""
    p_in = rng.normal(e0, 0.038 * e0, n)
    p_true = p_in - rng.exponential(2.0, n)
    r = rng.normal(0, 0.03, n)
    tail = rng.random(n) < 0.01
    r[tail] = rng.laplace(0, 0.04, tail.sum())
    ev = {k: np.zeros(n) for k in SCHEMAS["beam"]}
    ev.update(
        p_in_true=p_in, p_in_rec=p_in * (1 + rng.normal(0, 0.01, n)), p_out_true=p_true,
        p_out_rec=p_true / np.maximum(1 + r, 1e-3), e_ecal=p_in - p_true,
        e_hcal1=rng.gamma(4, 0.3, n), e_hcal2=rng.gamma(4, 0.3, n),
        s0=np.ones(n, bool), s1=np.ones(n, bool), s_mu=np.ones(n, bool), s4=np.ones(n, bool),
        v1=np.zeros(n, bool), vm=np.zeros(n, bool),
    )  # fmt: skip
    for i in range(1, 7):
        ev[f"hits_mm{i}"] = np.ones(n, np.uint8)
    ev["process"] = rng.choice([0, 1, 5], n, p=[0.9, 0.09, 0.01]).astype(np.int8)
    ev["hits_mm5"][(ev["process"] == 5) & (rng.random(n) < 0.5)] = 2
    return ev


#: synthetic visibility depth: first interaction ~ Exp(PT_LAMBDA_H) from a point uniform in
#: the last PT_ECAL_LAMBDA of the ECAL, plus PT_OFFSET for the shower to become visible
PT_LAMBDA_H, PT_ECAL_LAMBDA, PT_OFFSET = 1.2, 1.3, 0.3


def write_samples(folder: Path, *, seed: int = 7, n_beam: int = 200_000) -> Path:
    """Write beam, hadrons, leading_hadrons and dimuons samples + MANIFEST.json into folder."""
    rng = np.random.default_rng(seed)
    files = []

    def put(kind: str, ev: dict[str, np.ndarray], norm: object) -> None:
        path = folder / f"{kind}.root"
        with NtupleWriter(path, kind) as out:
            out.extend(ev)
        files.append(
            {
                "file": path.name,
                "sample": kind,
                "events": len(ev["p_in_rec"]),
                "seed": seed,
                "config_hash": "test",
                "sha256": sha256_file(path),
                "norm_per_mot": norm,
            }
        )

    put("beam", {**response(rng, n_beam), "halo": np.zeros(n_beam, bool)}, 1.0)
    n = 50_000
    ev = response(rng, n)
    pdg = rng.choice([-211, -321, 130], n, p=[0.9, 0.07, 0.03]).astype(np.int32)
    decayed = rng.random(n) < 0.05
    e_mu = np.where(decayed, rng.uniform(5, 160, n), 0.0)
    ev.update(
        pdg=pdg,
        e_hadron=ev["p_in_true"],
        decayed=decayed,
        z_decay_m=np.where(decayed, rng.uniform(0, 36, n), -1.0),
        e_mu_decay=e_mu,
        decay_channel=np.where(decayed, 1, 0).astype(np.int8),
    )
    ev["p_out_rec"] = np.where(decayed, e_mu, 150.0)
    ev["p_out_true"] = ev["p_out_rec"]
    ev["e_ecal"] = np.where(decayed, 1.0, 100.0)
    put("hadrons", ev, {"-211": 1e-6, "-321": 3e-8, "130": 1.5e-8})
    n = 20_000
    ev = response(rng, n)
    e1 = rng.exponential(20.0, n)
    ev.update(e_hadron=rng.uniform(80, 160, n), hadron_charged=rng.random(n) < 0.7,
              e_hcal1=e1, e_hcal2=rng.exponential(20.0, n) * (e1 > 1),
              e_hcal3=rng.exponential(20.0, n), e_hcal4=rng.exponential(20.0, n),
              depth_lambda=np.maximum(rng.exponential(PT_LAMBDA_H, n) - rng.uniform(0, PT_ECAL_LAMBDA, n) + PT_OFFSET, 0.0),
              p_out_rec=rng.uniform(1, 80, n),
              e_ecal=rng.uniform(0, 15, n))  # fmt: skip
    put("leading_hadrons", ev, 1e-6)
    ev = response(rng, n)
    ev.update(e_gamma=rng.uniform(10, 100, n), e_mu_plus=rng.uniform(5, 50, n),
              e_mu_minus=rng.uniform(5, 50, n), n_mu_hcal=np.full(n, 3, np.int8),
              trident=rng.random(n) < 0.1, p_out_rec=rng.uniform(10, 120, n),
              e_ecal=rng.uniform(0, 15, n), e_hcal1=rng.gamma(8, 0.6, n), e_hcal2=rng.gamma(8, 0.6, n))  # fmt: skip
    ev["hits_mm1"][rng.random(n) < 0.9] = 3
    put("dimuons", ev, 1e-7)
    (folder / "MANIFEST.json").write_text(json.dumps({"files": files}))
    return folder


@pytest.fixture(scope="session")
def synthetic_samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded synthetic sample folder shared by the source tests."""
    return write_samples(tmp_path_factory.mktemp("samples"))
