"""The web process's garbage collector, set for thousands of open websockets (diquis.asgi calls this once its
application is built).

CPython's full collection walks every tracked object of the process; with 2,000 sockets open that is ~640,000
objects, over half a second here, during which no frame is sent. Two things make those passes rare and
smaller, which no library does for us (the interpreter's own knobs, `gc.freeze` and `gc.set_threshold`):
- what start-up loaded (Django, the apps, the URLconf, their caches) is moved out of the collector's sight
  (`gc.freeze`): it lives as long as the process, and no pass need walk it;
- the youngest generation is collected after YOUNG_THRESHOLD new objects rather than 700. Each pass over it
  promotes whatever happens to be alive at that moment (a frame on its way out) to the older generations,
  and a full collection follows once enough was promoted: collected less often, far less is promoted, and
  the full passes all but stop (bench/RESULTS.md, section 4). A young pass then walks up to that many
  objects, a few tens of milliseconds.
"""

import gc

YOUNG_THRESHOLD = 50_000


def tune_for_open_sockets():
    gc.collect()  # garbage of start-up is freed, not frozen
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
