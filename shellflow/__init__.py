"""shellflow: functions kept in git repositories as durable, network-wide shell commands.

Importing the package must stay cheap: the ``flow`` command imports it on every start,
and shell completion re-runs ``flow`` on every TAB. Heavy libraries (SQLAlchemy, Celery,
Textual) are imported by the modules that need them, never here.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
