"""The invariants of issue 16, checked against the source of truth (the PostgreSQL servers) and through the API
after the faults end; each violation carries the history that led to it."""

import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import psycopg
from websockets.sync.client import connect

from .system import ROOT_EMAIL, ROOT_PASSWORD, TENANT_PREFIX
from .upgrade import release_parts
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
UPGRADE_OPEN = ("Pending", "Running", "Paused")
UPGRADE_ENDS = {"Succeeded": "UpgradeFinished", "Failed": "UpgradeFailed"}  # a pause or a cancel: UpgradeFailed
CHILD_ENDS = ("done", "failed", "skipped")


@dataclass(frozen=True)
class Look:
    """What the checker saw of a tenant database: the fingerprint the catalog records, the migrations applied,
    the next release's parts (upgrade.release_parts)."""

    recorded: str | None
    applied: frozenset
    release: tuple


@dataclass
class Violation:
    invariant: str
    what: str
    story: str = ""
    at: float = 0.0  # when the checker found it (seconds since the start of the run)

    def text(self):
        return f"VIOLATION [{self.invariant}] at {self.at:.2f}s: {self.what}\n{self.story}".rstrip()


@dataclass
class Checker:
    system: object
    history: object
    clients: list
    sockets: list
    since: int  # the last notification id before the run
    upgrade: object = None  # upgrade.MidRunUpgrade
    checks: Counter = field(default_factory=Counter)
    violations: list = field(default_factory=list)
    phase: str = ""  # " (during the run)" while watch.py checks: its checks are counted apart
    socket_checked: dict = field(default_factory=dict)  # socket client -> (frames checked, the last id)

    def check(self, invariant, holds, what, tenant=None, actor=None, around=None):
        """Count the check; a violation is kept and printed at once, with the history that led to it."""
        invariant += self.phase
        self.checks[invariant] += 1
        if not holds:
            story = self.history.story(tenant, actor=actor, around=around)
            violation = Violation(invariant, what, story, self.history.now())
            self.violations.append(violation)
            print(violation.text(), file=sys.stderr, flush=True)
        return holds

    def query(self, statement, params=()):
        with self.system.catalog() as connection:
            return connection.execute(statement, params).fetchall()

    # At any instant: watch.py checks these during the run, through the faults; the databases' part waits for
    # a round when every server answers

    def instant(self):
        self.phase = " (during the run)"
        try:
            self.sockets_in_order()
            try:
                busy = self.busy_tenants()
                found, _ = self.server_databases()
                catalog, _ = self.catalog_databases()
                busy |= self.busy_tenants()  # before and after the look: one that began or ended meanwhile
            except psycopg.Error:
                self.checks["rounds skipped: a server down (during the run)"] += 1
                return
            self.placement(catalog, found, busy)
            self.whole_databases(catalog, busy)
        finally:
            self.phase = ""

    def sockets_in_order(self):
        """A socket's persisted frames come in increasing id order, across its reconnections (`?since=` the last
        id it saw): none twice, none after a later one."""
        for client in self.sockets:
            count, last = self.socket_checked.get(client.name, (0, client.first_since))
            frames = client.received[count:]
            for id_, event, tenant in frames:
                up = id_ > last
                what = f"{client.name} received {id_} ({event}) after {last}"
                around = None if up else self.first_seen(id_)
                self.check("a socket's ids only go up", up, what, tenant, actor=client.name, around=around)
                last = max(last, id_)
            self.socket_checked[client.name] = (count + len(frames), last)

    def whole_databases(self, catalog, busy):
        """No tenant database half-migrated, now (but those an operation works on); one that does not answer now
        is looked at in the next round."""
        for (server, name), (tenant, recorded) in catalog.items():
            if tenant in busy:
                continue
            try:
                look = self.look(server, name, recorded)
            except psycopg.Error:
                continue
            self.whole(tenant, look)

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
        """Every accepted operation (and the upgrade: a paused one is resumed, as an operator would) reaches a
        final state within `bound` seconds after the faults end."""
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            upgrade = self.upgrade_status()
            if upgrade == "Paused":
                self.upgrade.resume()
            elif not self.in_flight() and upgrade not in UPGRADE_OPEN:
                break
            time.sleep(1)
        left = self.in_flight()
        for tenant, status, jobs in left:
            self.check("final state within the bound", False, f"{tenant} still {status}, open jobs {jobs}", tenant)
        self.check("final state within the bound", not left, f"{len(left)} tenants in flight after {bound}s")

    def upgrade_status(self):
        """The mid-run upgrade's status (None without one)."""
        if self.upgrade is None or self.upgrade.upgrade_id is None:
            return None
        return self.query("SELECT status FROM tenants_upgrade WHERE id = %s", [self.upgrade.upgrade_id])[0][0]

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

    # The tenant databases: where they are (at any instant, or after the faults) and what schema they have

    def busy_tenants(self):
        """Tenants an operation works on now (in flight, or an open job of theirs: a move's clean-up too): their
        databases may be on two servers, or not yet (or no longer) in the catalog."""
        rows = self.query(
            "SELECT id FROM tenants_tenant WHERE status = ANY(%s) UNION SELECT substr(subject, 8) FROM jobs_job"
            " WHERE starts_with(subject, 'tenant:') AND status = ANY(%s)",
            [list(IN_FLIGHT), list(OPEN_JOBS)],
        )
        return {row[0] for row in rows}

    def catalog_databases(self):
        """(server, database name) -> (tenant, recorded fingerprint) of every isolated tenant with a database
        named; and the tenants among them not provisioned (a creation not finished: the name is a reservation,
        the database may not be there yet)."""
        rows = self.query(
            "SELECT id, database_name, database_server_id, schema_fingerprint, is_provisioned FROM tenants_tenant"
            " WHERE has_isolated_database AND database_name IS NOT NULL"
        )
        catalog = {(server or "main", name): (tenant, recorded) for tenant, name, server, recorded, _ in rows}
        return catalog, {tenant for tenant, *_, provisioned in rows if not provisioned}

    def server_databases(self):
        """The tenant databases on the servers (name -> servers) and the fingerprints of their templates (server
        -> set)."""
        found, templates = {}, {}
        for server in self.system.clusters:
            templates[server] = set()
            for name in self.system.databases_on(server):
                if name.startswith(TEMPLATE_PREFIX):
                    templates[server].add(name.removeprefix(TEMPLATE_PREFIX))
                else:
                    found.setdefault(name, []).append(server)
        return found, templates

    def placement(self, catalog, found, busy=frozenset()):
        """No database on two servers, none the catalog does not know: but those of the `busy` tenants."""
        known = {name: tenant for (_, name), (tenant, _) in catalog.items()}
        excused = {name for name, tenant in known.items() if tenant in busy} | {TENANT_PREFIX + t for t in busy}
        for name, servers in found.items():
            if name in excused:
                continue
            self.check("no database on two servers", len(servers) == 1, f"{name} on {servers}", known.get(name))
            for server in servers:
                tenant = catalog.get((server, name), (None,))[0]
                self.check("no database the catalog does not know", tenant is not None, f"{name} on {server}")

    def databases(self):
        """Catalog and servers agree: no database unknown, none missing, none on two servers, none half-migrated,
        each at the schema the catalog records; the upgrade's databases at its target or (failed) at their
        previous schema."""
        catalog, reserved = self.catalog_databases()
        found, templates = self.server_databases()
        self.placement(catalog, found)
        looks = {}
        for (server, name), (tenant, recorded) in catalog.items():
            if tenant in reserved:
                self.reservation(server, name, tenant, found)
                continue
            if self.check(
                "no database the catalog names is missing",
                server in found.get(name, []),
                f"{tenant}: {name} not on {server}",
                tenant,
            ):
                self.check("each server has its template", bool(templates[server]), f"none on {server}", tenant)
                looks[tenant] = self.look(server, name, recorded)
        known = set().union(*templates.values(), filter(None, self.upgrade.heads if self.upgrade else ()))
        self.migrated(looks, known)
        self.upgraded(looks)

    def reservation(self, server, name, tenant, found):
        """A creation that failed for good (or is still retried): its database may be missing (the server never
        made it) or part-migrated (created empty, cut while migrating: a retry finishes it), never half of one
        migration."""
        if server not in found.get(name, []):
            return
        try:
            self.whole(tenant, self.look(server, name, None))
        except psycopg.errors.UndefinedTable:
            pass  # created empty, not one migration applied yet

    def look(self, server, database, recorded):
        with self.system.tenant_database(server, database) as connection:
            applied = frozenset(tuple(row) for row in connection.execute("SELECT app, name FROM django_migrations"))
            return Look(recorded, applied, release_parts(connection))

    def whole(self, tenant, look):
        """The next release's migration, column and index: all there or none (one transaction adds them)."""
        what = f"next release's (migration row, column, index): {look.release}"
        return self.check("no half-migrated database", set(look.release) in ({0}, {1}), what, tenant)

    def migrated(self, looks, known):
        """No database half-migrated; the databases the catalog records at one fingerprint (one of a template or
        of an upgrade) have one set of migrations, the one most of them have (the templates refuse connections);
        null says "not known" (a creation that failed before the end): some recorded set, never a lie."""
        sets = {}
        for tenant, look in looks.items():
            self.whole(tenant, look)
            if look.recorded is not None:
                sets.setdefault(look.recorded, Counter())[look.applied] += 1
        heads = {recorded: counter.most_common(1)[0][0] for recorded, counter in sets.items()}
        for tenant, look in looks.items():
            if look.recorded is None:
                ok, what = not heads or look.applied in heads.values(), "recorded null, matches no recorded schema"
            else:
                head = heads[look.recorded]
                ok = look.recorded in known and look.applied == head
                what = (
                    f"recorded {look.recorded} (known: {look.recorded in known}): lacks {sorted(head - look.applied)},"
                    f" has extra {sorted(look.applied - head)}"
                )
            self.check("recorded schema matches", ok, what, tenant)

    def upgraded(self, looks):
        """The upgrade ended; each tenant it covered is at its target (done) or, failed, at its previous schema
        (or either, recorded as not known) unless a job of its own brought it to the head since; it told its root
        admin how it ended, last."""
        if self.upgrade is None:
            return
        upgrade_id = self.upgrade.upgrade_id
        if not self.check("the upgrade is accepted", upgrade_id is not None, "no 202", actor="upgrade"):
            return
        status, target = self.query("SELECT status, target FROM tenants_upgrade WHERE id = %s", [upgrade_id])[0]
        what = f"upgrade {upgrade_id} {status}"
        self.check("the upgrade reaches a final state", status not in UPGRADE_OPEN, what, actor="upgrade")
        children = self.query(
            "SELECT tenant_id, status, error FROM tenants_upgradetenant WHERE upgrade_id = %s", [upgrade_id]
        )
        tally = Counter(child for _, child, _ in children)
        self.history.record("upgrade", "upgrade-ended", outcome=status, id=upgrade_id, **tally)
        for tenant, child, error in children:
            look = looks.get(tenant)
            self.check("no child of an ended upgrade open", child in CHILD_ENDS, f"{tenant} {child}", tenant)
            if look is None:
                continue  # deleted since (or no database any more): nothing to look at
            at_target = look.release == (1, 1, 1) and look.recorded == target
            what = f"{child}: {look.release}, recorded {look.recorded} {error[:80]}"
            if child == "done":
                self.check("an upgraded database is at the target", at_target, what, tenant)
            elif child == "failed":
                behind = look.release == (0, 0, 0) and look.recorded != target
                # Recorded "not known" (its server went silent: a commit may have landed): either, never half.
                unknown = look.recorded is None and look.release in ((0, 0, 0), (1, 1, 1))
                self.check("a failed database keeps its previous schema", behind or at_target or unknown, what, tenant)
        self.upgrade_notified(upgrade_id, status)

    def upgrade_notified(self, upgrade_id, status):
        """The root admin heard how the upgrade ended, last (a pause before it said UpgradeFailed too)."""
        ends = [
            event
            for event, upgrade in self.query(
                "SELECT n.event, n.data->>'upgradeId' FROM notifications_notification n JOIN tenants_user u"
                " ON u.id = n.user_id WHERE u.email = %s AND n.event = ANY(%s) ORDER BY n.id",
                [ROOT_EMAIL, list(UPGRADE_ENDS.values())],
            )
            if upgrade == str(upgrade_id)
        ]
        expected = UPGRADE_ENDS.get(status, UPGRADE_ENDS["Failed"])
        what = f"{status}, notifications {ends}"
        self.check("the upgrade's end is notified", ends[-1:] == [expected], what, actor="upgrade")

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
