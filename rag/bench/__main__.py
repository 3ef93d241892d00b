"""`python -m rag.bench ...`: the bench command on its own."""

import sys

from rag.bench.cli import main

sys.exit(main())
