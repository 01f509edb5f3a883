"""What a person may do to the network, decided once for the CLI and the dashboard.

``flow`` (``shellflow.commands``) and ``flow tui`` (``shellflow.tui``) call these functions
for processor actions, cancels and (re-)runs: each authorises the principal, acts through
the client, engine and model, and returns a plain result or raises a ``shellflow.errors``
error with its exit code, so a rule lives here and never in a front-end. Below the
front-ends, above ``shellflow.client``; never imports click or Textual, and imports nothing
heavy at module level (the CLI imports these modules on start-up).
"""
