"""The network's model: SQLAlchemy 2 tables, sessions, migrations and queries.

This package never imports Celery or click. Its ``__init__`` stays empty on purpose: the
light modules here (``rights``, ``listing``) are imported on the CLI's fast paths, and
importing them must not drag SQLAlchemy in.
"""
