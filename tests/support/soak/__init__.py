"""A fault soak of the whole system (issue 16): a seeded workload through the real API and websocket, a seeded
fault injector, and a checker of the invariants that must hold whatever happened.

It lives in tests/support (DESIGN.md: helpers shared with bench/) because both sides run it: the suite a short
seeded version (tests/e2e/test_soak.py) that fails on any violation, `make soak` the long one (bench/soak.py),
which writes bench/SOAK.md. Nothing here imports the product: the soak talks to it as its clients do (HTTP,
websocket) and reads its PostgreSQL servers as the source of truth, so a fault cannot hide inside the checker.

Every server it runs is its own (tests/support/postgres_clusters.py, tests/support/redis_server.py): it stops,
freezes and restarts them at will, and removes them when it ends, also when interrupted, and when killed with
SIGKILL (reaper.py). Mid-run it deploys the next release and upgrades the tenant databases (upgrade.py); what must
hold at any instant is checked while it runs (watch.py), the rest after the faults end (invariants.py).
"""
