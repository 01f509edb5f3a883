"""Fleet: the nodes, the agent on each and what it runs there.

The agent reconciles the database with its workers, deploys processors' code (git and a
virtualenv each), places processors on nodes and runs the scheduler; its rows live here.
May import: any other engine package, pids, and the layers below.
"""
