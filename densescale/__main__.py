"""``python -m densescale``: the command line (guarded, so spawned worker processes that
re-import this module do not run it again)."""

from densescale.cli import main

if __name__ == "__main__":
    main()
