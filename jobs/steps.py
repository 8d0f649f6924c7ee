"""Step timings of the attempt in progress, recorded for the attempt history.

A job function calls `with step("Creating database"):`; the runner stores the timings on the Attempt, and each
step is a span of the attempt's trace (jobs.tracing).
"""

import contextlib
import time
from contextvars import ContextVar

from .context import bound, current_step
from .tracing import tracer

_recorder: ContextVar["StepRecorder | None"] = ContextVar("diquis_step_recorder", default=None)


class StepRecorder:
    def __init__(self):
        self.steps = []

    def activate(self):
        return bound(_recorder, self)


@contextlib.contextmanager
def step(name):
    """Time the block as step `name` of the attempt; the lines it logs name the step."""
    recorder = _recorder.get()
    started = time.perf_counter()
    try:
        with bound(current_step, name), tracer.start_as_current_span(name):
            yield
    finally:
        if recorder is not None:
            recorder.steps.append({"name": name, "seconds": round(time.perf_counter() - started, 4)})
