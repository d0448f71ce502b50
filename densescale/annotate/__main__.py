"""``python -m densescale.annotate ict|doc2query|llm``: the annotate stage alone (light imports)."""

from __future__ import annotations

import sys

from densescale.annotate.cli import annotate_app
from densescale.errors import DenseScaleError


def main(argv: list[str] | None = None) -> None:
    try:
        annotate_app(args=argv, prog_name="densescale annotate", standalone_mode=True)
    except DenseScaleError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
