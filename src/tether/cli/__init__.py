"""The ``tether`` command line: inspect, resume and maintain threads in a checkpoint database.

tether threads DB
tether show DB THREAD [--graph module:attr]
tether history DB THREAD [--limit N]
tether resume DB THREAD --graph module:attr --value JSON [--id INTERRUPT_ID]
tether prune DB THREAD --keep-last N
tether export DB THREAD [-o FILE]  /  tether import DB FILE [--thread NEW_ID]
tether delete DB THREAD --yes
"""

from tether.cli._app import app, main

__all__ = ["app", "main"]
