"""The engine: everything a call passes through once it leaves a client.

Subpackages by role, top to bottom (each may import only those below it; docs/engine.md
has the map): ``fleet`` (agents, deployments, placement, the scheduler), ``worker`` (the
runtime serving a processor's sockets), ``dataflow`` (plugs and joins), ``calls`` (sending
calls and learning their outcomes), ``records`` (what a call leaves behind) and
``transport`` (the Celery app, broker objects, the embedded broker, result storage).
``pids`` names processes for good (pid and start time) for all of them.
"""
