"""``python -m annotated``: the lab's command line
(:mod:`annotated.lab.cli`)."""

from annotated.lab.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
