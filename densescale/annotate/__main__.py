"""``python -m densescale.annotate ict|doc2query|llm``: same as ``densescale annotate ...``."""

from __future__ import annotations

import sys

from densescale.cli import main

if __name__ == "__main__":
    main(["annotate", *sys.argv[1:]])
