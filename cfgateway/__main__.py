"""``python -m cfgateway``: the command line (:mod:`cfgateway.cli`)."""

from cfgateway.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
