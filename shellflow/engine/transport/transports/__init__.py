"""The transports behind ``shellflow.engine.transport.publisher.Transport``, one module each.

``wire`` (plain AMQP over a socket), ``kombu_connection`` (kombu without Celery),
``celery_producer`` (a Celery app's producer pool) and ``stub`` (in memory, for tests).
"""
