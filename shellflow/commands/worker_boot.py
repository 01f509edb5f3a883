"""The first code of a worker the agent starts, run as a script before ``site``:
``<venv python> -P -S .../worker_boot.py --settings-fd N -n PROC ...``.

Why a script run with ``-S``: an interpreter imports ``site`` as it starts, and ``site`` runs
the ``import`` lines of every ``.pth`` file of the virtualenv and its ``sitecustomize``;
those files come with the processor's packages, so they are the processor's code, and they
would run while the settings' descriptor is still open (``/proc/self/fd/N`` leads to it).
Started without ``site``, the interpreter runs this file (``-P``: its folder is not put on
the path), which reads the descriptor and closes it with the standard library alone, then
runs ``site.main()`` (the virtualenv's packages and their ``.pth`` files, the agent's
packages after them) and only then imports shellflow and serves: ``flow worker start``
with the rest of the arguments, the settings passed in memory
(``shellflow.engine.worker.credentials``).
"""

import os
import sys

OPTION = "--settings-fd"


def _read(fd: int) -> bytes:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        chunks: list[bytes] = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def main() -> None:
    args = sys.argv[1:]
    try:
        at = args.index(OPTION)
        fd = int(args[at + 1])
        data = _read(fd)
    except (ValueError, IndexError, OSError) as exc:
        sys.stderr.write(f"flow: {OPTION} N: cannot read the settings: {exc}\n")
        sys.exit(2)
    del args[at : at + 2]
    import site

    site.main()
    from shellflow.engine.worker.credentials import receive

    receive(data)
    from shellflow.commands import main as flow

    flow(["worker", "start", *args])


if __name__ == "__main__":
    main()
