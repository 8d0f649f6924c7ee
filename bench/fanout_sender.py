"""`python -m bench.fanout_sender ROUND USERS_FILE PART PARTS START_AT [RATE]`: one worker-like sender process.

Sends one notification (notifications.services.notify: a persisted row, then the channel layer's
group_send, exactly as a job does) to every PARTS-th user of USERS_FILE from PART on, starting at the
wall-clock time START_AT so that several senders begin together, as fast as it can or RATE a second.
Each carries the time it was sent.
Prints a JSON summary, with the duration of every notify() call (the sender's share of a frame's latency).
"""

import json
import sys
import time

import django

EVENT = "BenchPing"


def main(round_number, users_file, part, parts, start_at, rate=0.0):
    django.setup()
    from notifications.services import notify

    with open(users_file) as f:
        user_ids = json.load(f)[part::parts]
    time.sleep(max(0.0, start_at - time.time()))
    started = time.perf_counter()
    calls = []
    for index, user_id in enumerate(user_ids):
        if rate:
            time.sleep(max(0.0, started + index / rate - time.perf_counter()))
        called = time.perf_counter()
        notify(user_id, EVENT, {"round": round_number, "sentAt": time.time()})
        calls.append(time.perf_counter() - called)
    print(json.dumps({"sent": len(user_ids), "seconds": time.perf_counter() - started, "calls": calls}))


if __name__ == "__main__":
    r, path, p, n, at = sys.argv[1:6]
    main(int(r), path, int(p), int(n), float(at), float(sys.argv[6]) if len(sys.argv) > 6 else 0.0)
