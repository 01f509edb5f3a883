"""Records: what a call leaves behind, its row, events and output, and their live messages.

The recorder spools them inside the worker's processes; the spool writer commits them in
batches through the record store; events are published once committed.
May import: shellflow.engine.transport, pids, model, config, errors, urls.
"""
