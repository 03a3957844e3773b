"""``python -m modreg``: the same as the ``modreg`` command."""

from modreg.cli import main

main()
