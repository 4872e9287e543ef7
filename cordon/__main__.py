"""``python -m cordon`` is the ``cordon`` command."""

from cordon.cli import app

app()
