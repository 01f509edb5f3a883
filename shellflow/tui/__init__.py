"""``flow tui``: the Textual dashboard of calls, call graphs, live channels and the network.

Layout (after frogmouth): ``app`` holds the application and its :func:`make_app` factory,
``screens/`` one module per screen, ``dialogs/`` the modal questions, ``widgets/`` what the
screens share, and ``data/`` the UI-free core (queries and actions) that needs no Textual.
Never imports click: ``flow tui`` (shellflow/commands/tui.py) starts it through
``python -m shellflow.tui``.
"""
