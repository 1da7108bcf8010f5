"""``python -m examples.ctr``: see :mod:`examples.ctr.main` for the flags."""

from examples.ctr import main

if __name__ == "__main__":
  main.main()
