"""How big each benchmark is: the full run (`make bench`) and the quick one (`make bench-quick`, < 2 min)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    name: str
    quick: bool
    # 1. accept
    accept_concurrency: tuple
    accept_per_client: int
    accept_min_requests: int
    accept_rounds: int
    sync_concurrency: tuple
    sync_per_client: int
    sync_min_requests: int
    # 2. time to notified
    notified_tenants: int
    database_step_repeats: int
    # 3. burst
    burst_isolated: int
    burst_shared: int
    burst_workers: tuple  # worker counts of the isolated burst
    burst_shared_workers: tuple  # and of the shared one
    burst_repeats: int  # each burst this many times, alternating worker counts
    # 4. fan-out
    fanout_clients: int
    fanout_senders: tuple
    fanout_variants: tuple  # indexes into bench.fanout.VARIANTS
    fanout_rounds: int  # send rounds per sender count
    idle_seconds: int
    # 5. scale
    scale_tenant_counts: tuple
    scale_requests: int
    # 6. fleet
    fleet_placement_tenants: int  # isolated creations per placement burst
    fleet_placement_runs: tuple  # keys of bench.fleet.CONFIGURATIONS, in the order run
    fleet_stop_tenants_per_server: int
    fleet_stop_requests: int  # calls per row of the stopped-server measurement
    fleet_outages: tuple  # keys of bench.fleet.OUTAGES
    fleet_stop_rounds: int  # up and down this many times, the requests split over them
    fleet_move_megabytes: int  # data in each moved tenant's database
    # 7. pooling
    pooling_variants: tuple  # keys of bench.pooling.VARIANTS
    pooling_tenant_counts: tuple  # isolated (and shared) tenants the traffic is spread over
    pooling_clients: tuple
    pooling_workloads: tuple  # keys of bench.pooling.WORKLOADS
    pooling_requests: int  # measured per cell (variant, workload, tenants, clients, kind) and round
    pooling_warm_up: int  # requests of the same law sent before them, not counted
    pooling_rounds: int
    pooling_idle_seconds: float  # DIQUIS_TENANT_POOL_IDLE_SECONDS of the idle-close measurement
    pooling_memory: tuple  # variants whose memory is measured over every isolated tenant, twice
    pooling_bounced_counts: tuple  # the tenant counts the variants through PgBouncer are measured at
    pooling_bounced_workloads: tuple  # and the workloads
    # 8. upgrades
    upgrade_tenants: int  # isolated tenants (and django-tenants schemas) upgraded
    upgrade_repeats: int  # runs of `migrate_tenants` with nothing to apply
    upgrade_callers: int  # tenants whose admins make the tenant-scoped calls during the upgrade
    upgrade_idle_requests: int  # calls of the idle baseline
    # 9. password hashing
    hashing_concurrency: tuple  # clients of the sign-in rows
    hashing_sign_ins: int  # measured per client count, variant and round
    hashing_tenants: int  # shared tenants created per variant and round
    hashing_rounds: int  # each variant this many times, alternating
    hashing_repeats: int  # make_password alone, per hasher
    # 10. several web processes
    web_process_counts: tuple  # Daphne processes under supervisord, in the order run each round
    web_clients: tuple
    web_requests_per_client: int  # measured per cell (processes, clients) and round
    web_rounds: int  # the process counts alternate this many times
    # 11. tracing
    tracing_concurrency: tuple  # clients of the accept rows
    tracing_requests: int  # POSTs measured per client count, variant and round
    tracing_rounds: int  # each variant this many times, alternating

    def accept_requests(self, concurrency):
        return max(self.accept_min_requests, concurrency * self.accept_per_client)

    def sync_requests(self, concurrency):
        return max(self.sync_min_requests, concurrency * self.sync_per_client)


FULL = Mode(
    name="full",
    quick=False,
    accept_concurrency=(1, 16, 64),
    accept_per_client=10,
    accept_min_requests=100,
    accept_rounds=3,
    sync_concurrency=(1, 16),
    sync_per_client=1,
    sync_min_requests=8,
    notified_tenants=30,
    database_step_repeats=15,
    burst_isolated=200,
    burst_shared=500,
    burst_workers=(1, 2),
    burst_shared_workers=(2,),
    burst_repeats=2,
    fanout_clients=2000,
    fanout_senders=(1, 4),
    fanout_variants=(0, 1, 2),
    fanout_rounds=2,
    idle_seconds=300,
    scale_tenant_counts=(10, 100, 1000),
    scale_requests=200,
    fleet_placement_tenants=300,
    fleet_placement_runs=("one server", "three, 1/1/1", "three, 1/2/1", "one server", "three, 1/1/1"),
    fleet_stop_tenants_per_server=5,
    fleet_stop_requests=400,
    fleet_outages=("stopped", "hung"),
    fleet_stop_rounds=4,
    fleet_move_megabytes=100,
    pooling_variants=("a", "b", "c", "d"),
    pooling_tenant_counts=(10, 100, 1000),
    pooling_clients=(1, 16),
    pooling_workloads=("hot", "all"),
    pooling_requests=100,
    pooling_warm_up=50,
    pooling_rounds=2,
    pooling_idle_seconds=5,
    pooling_memory=("a", "b"),
    pooling_bounced_counts=(10, 100),
    pooling_bounced_workloads=("hot",),
    upgrade_tenants=1000,
    upgrade_repeats=3,
    upgrade_callers=20,
    upgrade_idle_requests=400,
    hashing_concurrency=(1, 4),
    hashing_sign_ins=100,
    hashing_tenants=15,
    hashing_rounds=2,
    hashing_repeats=20,
    web_process_counts=(1, 2),
    web_clients=(16, 64),
    web_requests_per_client=10,
    web_rounds=6,
    tracing_concurrency=(1, 16),
    tracing_requests=400,
    tracing_rounds=3,
)

QUICK = Mode(
    name="quick",
    quick=True,
    accept_concurrency=(1, 16),
    accept_per_client=4,
    accept_min_requests=30,
    accept_rounds=1,
    sync_concurrency=(1,),
    sync_per_client=3,
    sync_min_requests=3,
    notified_tenants=2,
    database_step_repeats=2,
    burst_isolated=8,
    burst_shared=12,
    burst_workers=(2,),
    burst_shared_workers=(2,),
    burst_repeats=1,
    fanout_clients=100,
    fanout_senders=(1, 4),
    fanout_variants=(2,),
    fanout_rounds=1,
    idle_seconds=6,
    scale_tenant_counts=(10, 100),
    scale_requests=30,
    fleet_placement_tenants=4,
    fleet_placement_runs=("one server", "three, 1/2/1"),
    fleet_stop_tenants_per_server=2,
    fleet_stop_requests=30,
    fleet_outages=("stopped",),
    fleet_stop_rounds=1,
    fleet_move_megabytes=5,
    pooling_variants=("a", "b", "c", "d"),
    pooling_tenant_counts=(10, 100),
    pooling_clients=(1, 16),
    pooling_workloads=("hot", "all"),
    pooling_requests=40,
    pooling_warm_up=20,
    pooling_rounds=1,
    pooling_idle_seconds=5,
    pooling_memory=("a", "b"),
    pooling_bounced_counts=(10,),
    pooling_bounced_workloads=("hot",),
    upgrade_tenants=30,
    upgrade_repeats=2,
    upgrade_callers=5,
    upgrade_idle_requests=80,
    hashing_concurrency=(1, 4),
    hashing_sign_ins=12,
    hashing_tenants=2,
    hashing_rounds=1,
    hashing_repeats=3,
    web_process_counts=(1, 2),
    web_clients=(16, 64),
    web_requests_per_client=3,
    web_rounds=1,
    tracing_concurrency=(1, 4),
    tracing_requests=40,
    tracing_rounds=1,
)
