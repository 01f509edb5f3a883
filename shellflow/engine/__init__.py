"""The engine: Celery app factory, worker runtime, agent, deployer, plugs and joins.

Built by the engine issue; nothing here yet. The model never imports from this package.
"""
