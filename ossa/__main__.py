"""``python -m ossa``: the same command as the ``ossa`` script."""

from ossa.cli import main

main()
