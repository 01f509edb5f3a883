"""What callers use: the Python API and the shell-side helpers of ``flow``.

``api`` (Socket/Function, Processor, Plug), ``canvas`` (pipeline, parallel, funnel),
``decorators`` (processor, socket, plug), ``settings`` (configure), ``commands`` (socket
commands for plumbum), ``pipes`` (which shell pipeline a ``flow`` process belongs to).
``import shellflow`` re-exports the API lazily; nothing here imports a heavy library at
import time.
"""
