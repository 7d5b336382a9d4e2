"""`python -m skewless`: the same CLI as the `skewless` console script."""

from skewless.cli import main

main()
