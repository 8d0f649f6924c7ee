"""Benchmarks of Diquis on the real stack (Daphne, RQ workers, PostgreSQL, Redis): `make bench`."""
