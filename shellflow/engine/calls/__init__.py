"""Calls: sending calls to sockets from a long-lived process, and learning how they ended.

The sender (one call), bursts (a stream's many calls on one result subscription), outcomes
(where one call stands, waiting for it, cancelling it) and the one result decoder.
May import: shellflow.engine.records, transport, pids, model, config, errors, urls.
"""
