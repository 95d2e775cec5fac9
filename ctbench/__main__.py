"""`python -m ctbench ...`: the same command line as the `ctbench` script (e.g. under torchrun -m)."""
import sys

from ctbench.cli import main

sys.exit(main())
