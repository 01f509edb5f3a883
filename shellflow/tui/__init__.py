"""``flow tui``: the Textual dashboard (its own issue). Never imports click."""
