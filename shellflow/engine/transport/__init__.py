"""Transport: how a call's message travels and where its result is kept.

The one call publisher (the outgoing call, its one protocol-2 builder, the ``Transport``
port and its transports: AMQP wire, kombu, a Celery app's pool, an in-memory stub), the
Celery app and its settings, broker objects (queues, exchanges, dead letters), the
embedded broker, kombu's Redis transport fixes, the one-write result store and the plain
Redis result reader. May import: shellflow.engine.pids, model, config, errors, urls; no
other engine package.
"""
