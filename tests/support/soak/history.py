"""What happened during a soak, in order: every operation a client made (with its answer), every fault, every
frame a websocket client received. The checker reads it, and prints the part of it that led to a violation."""

import threading
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Event:
    at: float  # seconds since the start of the run
    actor: str  # "client-2", "faults", "ws-1", "checker"
    kind: str  # "create", "update", ..., or a fault's kind
    tenant: str | None = None
    outcome: str = ""  # "202", "409", "error: ...", "done"
    detail: dict = field(default_factory=dict)

    def line(self):
        tenant = f" {self.tenant}" if self.tenant else ""
        detail = f" {self.detail}" if self.detail else ""
        return f"{self.at:8.2f}s {self.actor:<9} {self.kind}{tenant} -> {self.outcome}{detail}"


class History:
    def __init__(self):
        self.started = time.monotonic()
        self._events = []
        self._lock = threading.Lock()

    def now(self):
        return time.monotonic() - self.started

    def record(self, actor, kind, *, tenant=None, outcome="", **detail):
        event = Event(self.now(), actor, kind, tenant, outcome, detail)
        with self._lock:
            self._events.append(event)
        return event

    def events(self):
        with self._lock:
            return list(self._events)

    def of_tenant(self, tenant_id):
        return [event for event in self.events() if event.tenant == tenant_id]

    def of_actor(self, actor):
        return [event for event in self.events() if event.actor == actor]

    def faults(self):
        return [event for event in self.events() if event.actor == "faults"]

    def story(self, tenant_id=None, *, actor=None, around=None, limit=80):
        """The lines that explain a violation: the faults, and the tenant's or the actor's own events, in order;
        `around`, an instant: only what happened within 30 s of it."""
        events = [
            e
            for e in self.events()
            if e.actor in ("faults", actor) or (tenant_id and e.tenant == tenant_id and e.actor != "faults")
        ]
        if around is not None:
            events = [e for e in events if abs(e.at - around) <= 30]
        return "\n".join(event.line() for event in events[-limit:])

    def dump(self, path):
        """Every event, one line each: the whole history of a run, beside its servers' logs."""
        with open(path, "w") as out:
            out.writelines(f"{event.line()}\n" for event in self.events())
