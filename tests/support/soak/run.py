"""One soak run: start the system, run the clients and the fault injector for the given minutes, undo the
faults, then check the invariants; `Result` holds the counts, the checks and the violations."""

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .faults import FaultInjector
from .history import History
from .invariants import Checker
from .system import System
from .upgrade import MidRunUpgrade
from .watch import Watcher
from .workload import SocketClient, TenantClient

CLIENTS = 3
SOCKETS = 2
SETTLE_BOUND = 180  # seconds after the faults end for every accepted operation to reach a final state


@dataclass
class Result:
    seed: str
    minutes: float
    history: History
    checker: Checker
    injector_error: object  # the soak itself failed (its fault injector or its watch), not the product

    @property
    def violations(self):
        return self.checker.violations

    def operations(self):
        """(kind, outcome) -> count of what the clients asked and were answered."""
        return Counter((e.kind, e.outcome) for e in self.history.events() if e.actor.startswith("client"))

    def faults(self):
        """fault kind -> how many struck (the first log line of each)."""
        firsts = ("SIGKILL", "stopped", "SIGSTOP", "stalled")
        return Counter(e.kind for e in self.history.faults() if e.outcome in firsts)


def last_notification_id(system):
    with system.catalog() as connection:
        return connection.execute("SELECT coalesce(max(id), 0) FROM notifications_notification").fetchone()[0]


def soak(*, minutes, seed, log_dir, outage=(5, 60), pause=(5, 20)):
    seed = str(seed if seed is not None else random.randrange(10**6))
    history = History()
    with System(log_dir) as system:
        stop = threading.Event()
        since = last_notification_id(system)
        clients = [TenantClient(system, history, seed, index, stop) for index in range(CLIENTS)]
        sockets = [SocketClient(system, history, seed, index, stop, since) for index in range(SOCKETS)]
        upgrade = MidRunUpgrade(system, history, seed, run_seconds=minutes * 60)
        injector = FaultInjector(system, history, seed, stop, sockets, pause=pause, outage=outage, upgrade=upgrade)
        checker = Checker(system, history, clients, sockets, since, upgrade)
        watcher = Watcher(checker, history, stop)
        for thread in [*clients, *sockets, injector, watcher]:
            thread.start()
        stop.wait(minutes * 60)
        stop.set()
        for thread in [injector, watcher, *clients]:
            thread.join()
        history.record("checker", "faults-ended", outcome="restore")
        system.restore()
        system.wait_healthy(timeout=120)
        checker.settled(SETTLE_BOUND)
        time.sleep(5)  # the sockets take the last frames, then close
        for client in sockets:
            client.closing.set()
            client.join()
        reconnect_all(sockets)
        upgrade.close()
        checker.sockets_in_order()
        checker.answers()
        checker.notifications()
        checker.replays()
        checker.databases()
        checker.users()
        checker.usable(seed)
        history.dump(Path(log_dir) / "history.txt")
        return Result(seed, minutes, history, checker, injector.error or watcher.error)


def reconnect_all(sockets):
    """A last reconnection of each socket with `?since=` its last id: what it missed arrives now."""
    for client in sockets:
        client.closing.clear()
        client.stall_until = 0.0
        client.session(seconds=5)
        client.api.close()
