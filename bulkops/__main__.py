"""`python -m bulkops`: the same as the `bulkops` console script."""

from bulkops.cli import main

main()
