"""The soak's fault injector: one fault at a time, drawn from a generator seeded from the run's seed, each
logged with the instant it struck and the instant it was undone."""

import contextlib
import os
import random
import signal
import threading

FAULTS = {
    "kill-worker": 3,
    "kill-horse": 3,
    "kill-web": 2,
    "redis-stop": 1,
    "redis-freeze": 1,
    "tenant-server-stop": 2,
    "main-restart": 1,
    "socket-stall": 2,
}


class FaultInjector(threading.Thread):
    """`pause` is the range of seconds between two faults; `outage` the range an outage lasts (Redis stopped
    or frozen, a tenant server stopped). `upgrade` (upgrade.MidRunUpgrade), when given, runs in the place of the
    first fault due after its instant: no fault is half-done while the deploy replaces the processes."""

    def __init__(self, system, history, seed, stop, sockets, *, pause=(5, 20), outage=(5, 60), upgrade=None):
        super().__init__(name="faults", daemon=True)
        self.system = system
        self.history = history
        self.rng = random.Random(f"{seed}-faults")
        self.stop = stop
        self.sockets = sockets
        self.pause = pause
        self.outage = outage
        self.upgrade = upgrade
        self.error = None

    def run(self):
        try:
            while not self.stop.wait(self.rng.uniform(*self.pause)):
                kind = self.rng.choices(list(FAULTS), weights=list(FAULTS.values()))[0]
                if self.upgrade is not None and self.upgrade.due():
                    self.upgrade.run()
                else:
                    getattr(self, kind.replace("-", "_"))()
        except Exception as error:  # noqa: BLE001  (reported by the run: the soak itself failed, not the product)
            self.error = error
            self.history.record("faults", "injector-failed", outcome=repr(error))

    def log(self, kind, outcome, **detail):
        self.history.record("faults", kind, outcome=outcome, **detail)

    def hold(self, seconds):
        """Wait out an outage; the end of the run cuts it short."""
        self.stop.wait(seconds)

    def kill_worker(self):
        worker = self.rng.choice(self.system.workers)
        self.log("kill-worker", "SIGKILL", worker=worker.process.name, pid=worker.process.pid)
        worker.kill()
        self.hold(self.rng.uniform(0.5, 5))
        worker.start()
        self.log("kill-worker", "restarted", worker=worker.process.name)

    def kill_horse(self):
        worker = self.rng.choice(self.system.workers)
        horses = worker.horses()
        if not horses:
            return self.log("kill-horse", "no horse", worker=worker.process.name)
        pid = self.rng.choice(horses)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self.log("kill-horse", "SIGKILL", worker=worker.process.name, pid=pid)

    def kill_web(self):
        web = self.rng.choice(self.system.webs)
        self.log("kill-web", "SIGKILL", web=web.process.name)
        web.kill()
        self.hold(self.rng.uniform(0, 3))
        web.start()
        self.log("kill-web", "restarted", web=web.process.name)

    def outage_of(self, kind, begin, end, labels, **detail):
        """`begin()`, an outage of a length drawn from `outage`, then `end()`; `labels` name the two instants."""
        seconds = self.rng.uniform(*self.outage)
        self.log(kind, labels[0], seconds=round(seconds, 1), **detail)
        begin()
        self.hold(seconds)
        end()
        self.log(kind, labels[1], **detail)

    def redis_stop(self):
        self.outage_of("redis-stop", self.system.redis.stop, self.system.redis.start, ("stopped", "started"))

    def redis_freeze(self):
        redis = self.system.redis
        self.outage_of("redis-freeze", redis.freeze, redis.thaw, ("SIGSTOP", "SIGCONT"))

    def tenant_server_stop(self):
        server = self.rng.choice(["pg-a", "pg-b"])
        mode = self.rng.choice(["fast", "immediate"])
        cluster = self.system.clusters[server]
        stop = lambda: cluster.stop(mode)  # noqa: E731  (named for outage_of, beside its twin start_again)
        labels = ("stopped", "started")
        self.outage_of("tenant-server-stop", stop, cluster.start_again, labels, server=server, mode=mode)

    def main_restart(self):
        mode = self.rng.choice(["fast", "immediate"])
        self.log("main-restart", "stopped", mode=mode)
        self.system.clusters["main"].stop(mode)
        self.hold(self.rng.uniform(1, 5))
        self.system.clusters["main"].start_again()
        self.log("main-restart", "started")

    def socket_stall(self):
        client = self.rng.choice(self.sockets)
        seconds = self.rng.uniform(10, 40)
        client.stall(seconds)
        self.log("socket-stall", "stalled", client=client.name, seconds=round(seconds, 1))
