"""Worker: the runtime serving one processor's sockets as Celery tasks.

The runtime builds the app, registers each function wrapped by delivery (the redelivery
cap, retries, dead letters), records every call and fires its plugs.
May import: shellflow.engine.dataflow, calls, records, transport, pids, and the layers below.
"""
