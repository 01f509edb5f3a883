"""What callers use: the Python API (to come) and the shell-side helpers of ``flow``."""
