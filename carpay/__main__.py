"""python -m carpay: the carpay command line."""

from carpay.cli import main

main()
