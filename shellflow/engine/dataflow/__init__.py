"""Dataflow: what a finished call sets going, a plug's next call and a join's gathered one.

Plugs carry a result (or an error) into another socket's argument; joins hold arguments
until all of them have arrived for one flow run, then send the target once.
May import: shellflow.engine.calls, records, transport, pids, model, config, errors, urls.
"""
