"""``python -m shellflow`` runs the ``flow`` command."""

from shellflow.commands import main

if __name__ == "__main__":
    main()
