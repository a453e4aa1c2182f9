"""``python -m bkg``: the same as the ``bkg`` command."""

from bkg.cli import main

main()
