"""The write path below the exporter: encoded entries -> sender -> writer -> socket.

* ``delivery``: the sender's bounded queue and its books (what goes next, what is dropped, why);
* ``transport``: the sender itself, a thread (sync mode) or a task on the exporter's event loop
  (async mode), with its start, fork and close;
* ``attempt``: one round trip's commands, packing, replies and ``WAIT``, and the backoff;
* ``single``, ``cluster``, ``sentinel``: the writers for each deployment;
* ``loop``: the exporter-owned event-loop thread.

Nothing here calls back up into the exporter.
"""

from .delivery import HANDOFF_TIMEOUT_S, Delivery, Ticket
from .transport import Sender, make_delivery, make_sender

__all__ = ["HANDOFF_TIMEOUT_S", "Delivery", "Sender", "Ticket", "make_delivery", "make_sender"]
