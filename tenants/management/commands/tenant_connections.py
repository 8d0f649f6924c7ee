"""`python manage.py tenant_connections`: the sessions on each database server, by process, against its
max_connections (tenants.sessions)."""

from django.conf import settings
from django.core.management.base import BaseCommand

from tenants.sessions import fleet_sessions


class Command(BaseCommand):
    help = "Show the sessions on each database server, by process, against the server's max_connections."

    def handle(self, *args, **options):
        servers = fleet_sessions()
        if not servers:
            self.stdout.write("The embedded SQLite default has no database server to show.")
            return
        bound = settings.DIQUIS_TENANT_POOL_PER_SERVER
        self.stdout.write(f"Pooled tenant sessions kept per process and server: at most {bound} idle.")
        for name, seen in servers.items():
            if seen is None:
                self.stdout.write(f"\n{name}: does not answer")
                continue
            self.stdout.write(
                f"\n{name}: {seen['sessions']} of max_connections {seen['maxConnections']} "
                f"({seen['tenantSessions']} on tenant databases); {seen['free']} free for migrations and moves"
            )
            for process, counts in seen["byProcess"].items():
                self.stdout.write(
                    f"  {process:<32} {counts['tenant']:>5} on tenant databases, {counts['all']:>5} in all"
                )
