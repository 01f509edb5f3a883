"""Transport: how a call's message travels and where its result is kept.

The Celery app and its settings, broker objects (queues, exchanges, dead letters), the
embedded broker, kombu's Redis transport fixes and the one-write result store.
May import: shellflow.engine.pids, model, config, errors, urls; no other engine package.
"""
