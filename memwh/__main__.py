"""`python -m memwh` = the `memwh` command."""

from memwh.cli import main

main()
