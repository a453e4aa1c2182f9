"""The project's exceptions: one base, one class per kind of user-facing failure.

The command line turns any :class:`BkgError` into one line on stderr and exit
code 2; every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


def one_line(text: object) -> str:
    """``text`` (a message or an exception) on one line: runs of white space become one space.

    Example:
        >>> one_line("expected Chunk of length 403,\\nreceived 9 bytes")
        'expected Chunk of length 403, received 9 bytes'
    """
    return " ".join(str(text).split())


class BkgError(Exception):
    """Base of every error a user can cause and fix (bad config, bad sample, ...)."""


class ConfigError(BkgError):
    """The configuration is not valid YAML, violates the schema or is inconsistent."""

    def __init__(self, problems: list[str] | str, *, source: str = "config") -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        n = len(self.problems)
        if n <= 2:
            text = f"{source}: " + ("" if n == 1 else f"{n} problems: ") + "; ".join(self.problems)
        else:  # one line stays readable; `bkg config validate` lists them all
            target = source if source.endswith((".yaml", ".yml", ".json")) else "FILE"
            text = (
                f"{source}: {n} problems, the first: {self.problems[0]} "
                f"(`bkg config validate {target}` lists every one)"
            )
        super().__init__(text)


class SampleError(BkgError):
    """A sample file is missing, unreadable, or does not meet the ntuple contract."""


class FitError(BkgError):
    """A fit failed (did not converge, invalid covariance) after its retries."""


class LimitError(BkgError):
    """A limit could not be computed (no bracket, no signal)."""


class OutputError(BkgError):
    """An output could not be written (folder not writable, disk full)."""
