"""Shared fixtures: the default configuration and a clean global state for every test."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("ZFIT_DISABLE_TF_WARNINGS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def default_config():
    """The built-in NA64mu configuration (frozen, shared)."""
    from bkg.config import load_config

    return load_config()


@pytest.fixture(autouse=True)
def _restore_global_state():
    """Restore numpy's global RNG state and the pyhf backend if a test changed them."""
    state = np.random.get_state()  # noqa: NPY002 (pyhf toys draw from the global RNG)
    yield
    np.random.set_state(state)  # noqa: NPY002
    import sys

    if "pyhf" in sys.modules:
        import pyhf

        if pyhf.tensorlib.name != "numpy":
            pyhf.set_backend("numpy")


@pytest.fixture
def refuse_reading(monkeypatch):
    """``refuse_reading(name)``: reading a file of that name fails with "Permission denied".

    Tests may run as root, where chmod 000 does not stop reading: fake the refusal.
    """
    import pathlib

    real = pathlib.Path.read_text

    def refuse(name: str) -> None:
        def read_text(self, *args, **kwargs):
            if self.name == name:
                raise PermissionError(13, "Permission denied", str(self))
            return real(self, *args, **kwargs)

        monkeypatch.setattr(pathlib.Path, "read_text", read_text)

    return refuse
