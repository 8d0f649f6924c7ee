"""The invariants that must hold at any instant, checked while the soak runs (Checker.instant): every `interval`
seconds, through the faults, until the run stops. A violation is printed when it is found, with its history."""

import threading


class Watcher(threading.Thread):
    def __init__(self, checker, history, stop, interval=10):
        super().__init__(name="watch", daemon=True)
        self.checker = checker
        self.history = history
        self.stop = stop
        self.interval = interval
        self.error = None

    def run(self):
        try:
            while not self.stop.wait(self.interval):
                self.checker.instant()
        except Exception as error:  # noqa: BLE001  (reported by the run: the soak itself failed, not the product)
            self.error = error
            self.history.record("checker", "watch-failed", outcome=repr(error))
