"""The invariants of issue 16, checked against the source of truth (the PostgreSQL servers) and through the API
after the faults end; each violation carries the history that led to it."""

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field

from websockets.sync.client import connect

from .system import ROOT_EMAIL, ROOT_PASSWORD, TENANT_PREFIX
from .workload import ADMIN_PASSWORD, Api

IN_FLIGHT = ("Pending", "Provisioning", "Updating", "Deleting", "Moving")
OPEN_JOBS = ("queued", "running", "retry_wait")
OPERATIONS = ("create", "update", "delete", "retry", "move")
FAMILIES = {
    "create": ("TenantCreated", "TenantCreationFailed"),
    "update": ("TenantUpdated", "TenantUpdateFailed"),
    "delete": ("TenantDeleted", "TenantDeletionFailed"),
    "move": ("TenantMoved", "TenantMoveFailed"),
}
FINAL_EVENTS = {event: kind for kind, events in FAMILIES.items() for event in events}
TEMPLATE_PREFIX = f"{TENANT_PREFIX}template_"


@dataclass
class Violation:
    invariant: str
    what: str
    story: str = ""

    def text(self):
        return f"VIOLATION [{self.invariant}] {self.what}\n{self.story}".rstrip()


@dataclass
class Checker:
    system: object
    history: object
    clients: list
    sockets: list
    since: int  # the last notification id before the run
    checks: Counter = field(default_factory=Counter)
    violations: list = field(default_factory=list)

    def check(self, invariant, holds, what, tenant=None, actor=None, around=None):
        self.checks[invariant] += 1
        if not holds:
            story = self.history.story(tenant, actor=actor, around=around)
            self.violations.append(Violation(invariant, what, story))
        return holds

    def query(self, statement, params=()):
        with self.system.catalog() as connection:
            return connection.execute(statement, params).fetchall()

    # During the run (from the history)

    def answers(self):
        for event in self.history.events():
            if event.outcome.startswith("5") and event.outcome != "503":
                self.check("no 500", False, f"{event.actor} {event.kind} answered {event.outcome}", event.tenant)
            elif event.kind == "user-read" and event.outcome == "200":
                missing = event.detail.get("missing")
                self.check("acknowledged users are read back", not missing, f"{missing} missing", event.tenant)

    # After the faults end

    def settled(self, bound):
        """Every accepted operation reaches a final state within `bound` seconds after the faults end."""
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            if not self.in_flight():
                break
            time.sleep(1)
        left = self.in_flight()
        for tenant, status, jobs in left:
            self.check("final state within the bound", False, f"{tenant} still {status}, open jobs {jobs}", tenant)
        self.check("final state within the bound", not left, f"{len(left)} tenants in flight after {bound}s")

    def in_flight(self):
        return self.query(
            "SELECT t.id, t.status, (SELECT count(*) FROM jobs_job j WHERE j.subject = 'tenant:' || t.id"
            " AND j.status = ANY(%s)) FROM tenants_tenant t WHERE t.status = ANY(%s)"
            " OR EXISTS (SELECT 1 FROM jobs_job j WHERE j.subject = 'tenant:' || t.id AND j.status = ANY(%s))",
            [list(OPEN_JOBS), list(IN_FLIGHT), list(OPEN_JOBS)],
        )

    def root_notifications(self):
        rows = self.query(
            "SELECT n.id, n.event, n.data->>'tenantId' FROM notifications_notification n JOIN tenants_user u"
            " ON u.id = n.user_id WHERE u.email = %s AND n.id > %s ORDER BY n.id",
            [ROOT_EMAIL, self.since],
        )
        return [(row[0], row[1], row[2]) for row in rows]

    def notifications(self):
        """One final notification per accepted operation, of the operation's kind, for the user who asked."""
        by_tenant = {}
        for _, event, tenant in self.root_notifications():
            if event in FINAL_EVENTS:
                by_tenant.setdefault(tenant, []).append(event)
        for client in self.clients:
            for tenant in {*client.tenants, *client.maybe}:
                self.tenant_notifications(tenant, by_tenant.get(tenant, []))

    def tenant_notifications(self, tenant, events):
        operations = [e for e in self.history.of_tenant(tenant) if e.kind in OPERATIONS]
        accepted = [e for e in operations if e.outcome == "202"]
        unanswered = [e for e in operations if e.outcome.startswith("error")]
        what = f"{len(accepted)} accepted (+{len(unanswered)} unanswered), final notifications {events}"
        if not self.check("one final notification per operation", len(accepted) <= len(events), what, tenant):
            return
        if not self.check(
            "one final notification per operation", len(events) <= len(accepted) + len(unanswered), what, tenant
        ):
            return
        if unanswered:
            return
        kinds, last = [], None
        for operation in accepted:
            kind = last if operation.kind == "retry" else operation.kind
            kinds.append(kind)
            last = kind
        for kind, event in zip(kinds, events, strict=True):
            self.check(
                "final notification of the operation's kind",
                event in FAMILIES.get(kind, ()),
                f"{kind} ended with {event}: {what}",
                tenant,
            )
        exists = bool(self.query("SELECT 1 FROM tenants_tenant WHERE id = %s", [tenant]))
        deleted = bool(events) and events[-1] == "TenantDeleted"
        self.check(
            "catalog matches the last notification",
            exists != deleted,
            f"row exists: {exists}, last {events[-1:]}",
            tenant,
        )

    def replays(self):
        """Each websocket client, reconnected with `?since=` its last id, has every notification exactly once."""
        expected = {id_ for id_, _, _ in self.root_notifications()}
        for client in self.sockets:
            ids = Counter(id_ for id_, _, _ in client.received)
            twice = sorted(id_ for id_, count in ids.items() if count > 1)
            what = f"{client.name} received {twice} twice"
            self.check("each notification once per socket", not twice, what, actor=client.name)
            missing = sorted(expected - set(ids))
            what = f"{client.name} never received {missing[:20]} ({len(missing)} of {len(expected)})"
            around = self.first_seen(missing[0]) if missing else None
            self.check("each notification reaches each socket", not missing, what, actor=client.name, around=around)

    def first_seen(self, notification_id):
        """When a socket first received this notification (the instant its push went out), if any did."""
        for event in self.history.events():
            if event.kind == "frame" and event.detail.get("id") == notification_id:
                return event.at
        return None

    def databases(self):
        """Catalog and servers agree: no database unknown, none missing, none on two servers, none half-migrated."""
        catalog = {
            (server or "main", name): tenant
            for tenant, name, server in self.query(
                "SELECT id, database_name, database_server_id FROM tenants_tenant"
                " WHERE has_isolated_database AND database_name IS NOT NULL"
            )
        }
        found, templates = {}, {}
        for server in self.system.clusters:
            for name in self.system.databases_on(server):
                if name.startswith(TEMPLATE_PREFIX):
                    templates[server] = name
                else:
                    found.setdefault(name, []).append(server)
        for name, servers in found.items():
            self.check("no database on two servers", len(servers) == 1, f"{name} on {servers}")
            for server in servers:
                tenant = catalog.get((server, name))
                self.check("no database the catalog does not know", tenant is not None, f"{name} on {server}")
        applied = {}
        for (server, name), tenant in catalog.items():
            if self.check(
                "no database the catalog names is missing",
                server in found.get(name, []),
                f"{tenant}: {name} not on {server}",
                tenant,
            ):
                applied[tenant] = self.applied(server, name)
                self.recorded_schema(tenant, templates.get(server))
        self.migrated(applied)

    def migrated(self, applied):
        """Every tenant database has the migrations most of them have (no upgrade runs: all are at the head);
        the template itself refuses connections, so the majority stands for it."""
        if not applied:
            return
        head = Counter(frozenset(migrations) for migrations in applied.values()).most_common(1)[0][0]
        for tenant, migrations in applied.items():
            self.check(
                "no half-migrated database",
                migrations == head,
                f"lacks {sorted(head - migrations)}, has extra {sorted(migrations - head)}",
                tenant,
            )

    def recorded_schema(self, tenant, template):
        if not self.check("each server has its template", template is not None, "no template", tenant):
            return
        recorded = self.query("SELECT schema_fingerprint FROM tenants_tenant WHERE id = %s", [tenant])[0][0]
        fingerprint = template.removeprefix(TEMPLATE_PREFIX)
        # Null says "not known" (a creation that failed before the end): behind until a job looks, never a lie.
        self.check(
            "recorded schema matches",
            recorded in (None, fingerprint),
            f"recorded {recorded}, head {fingerprint}",
            tenant,
        )

    def applied(self, server, database):
        with self.system.tenant_database(server, database) as connection:
            return {tuple(row) for row in connection.execute("SELECT app, name FROM django_migrations")}

    def users(self):
        """No acknowledged tenant-user write lost, no user twice (read where the users live)."""
        for client in self.clients:
            for tenant, emails in client.acknowledged.items():
                row = self.query("SELECT database_name, database_server_id FROM tenants_tenant WHERE id = %s", [tenant])
                if not row:
                    continue  # deleted since: its users went with it
                stored = self.stored_users(tenant, *row[0])
                missing = sorted(set(emails) - set(stored))
                self.check("no acknowledged user write lost", not missing, f"{missing} missing", tenant)
                twice = sorted(email for email, count in Counter(stored).items() if count > 1)
                self.check("no duplicate user", not twice, f"{twice} twice", tenant)

    def stored_users(self, tenant, database, server):
        statement = "SELECT email FROM tenants_user WHERE tenant_id = %s"
        if database is None:
            return [row[0] for row in self.query(statement, [tenant])]
        with self.system.tenant_database(server or "main", database) as connection:
            return [row[0] for row in connection.execute(statement, [tenant])]

    def usable(self, seed, timeout=120):
        """A fresh creation (shared and isolated) succeeds end to end: 202, TenantCreated on a socket, sign-in."""
        api = Api(self.system, random.Random(f"{seed}-checker"))
        token, _ = api.sign_in(ROOT_EMAIL, ROOT_PASSWORD)
        since = max([self.since, *(id_ for id_, _, _ in self.root_notifications())])
        web = self.system.webs[0]
        with connect(f"{web.ws_url}?access_token={token}&since={since}", open_timeout=10) as ws:
            for isolated in (False, True):
                tenant = f"fresh-{seed}-{int(isolated)}".lower()
                body = {
                    "id": tenant,
                    "name": tenant,
                    "adminEmail": f"admin@{tenant}.soak.test",
                    "password": ADMIN_PASSWORD,
                    "hasIsolatedDatabase": isolated,
                }
                _, outcome = api.call("POST", "/api/tenants", token=token, body=body)
                self.history.record("checker", "create", tenant=tenant, outcome=outcome)
                if not self.check("usable after the faults", outcome == "202", f"creation answered {outcome}", tenant):
                    continue
                event = self.wait_final(ws, tenant, timeout)
                self.history.record("checker", "frame", tenant=tenant, outcome=str(event))
                self.check("usable after the faults", event == "TenantCreated", f"ended with {event}", tenant)
                signed, outcome = api.sign_in(f"admin@{tenant}.soak.test", ADMIN_PASSWORD, tenant=tenant)
                self.check("usable after the faults", signed is not None, f"admin sign-in {outcome}", tenant)
        api.close()

    def wait_final(self, ws, tenant, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                frame = json.loads(ws.recv(timeout=1))
            except TimeoutError:
                continue
            if (frame.get("data") or {}).get("tenantId") == tenant and frame["event"] in FINAL_EVENTS:
                return frame["event"]
        return None
