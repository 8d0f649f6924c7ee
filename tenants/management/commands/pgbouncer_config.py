"""`python manage.py pgbouncer_config --server NAME --port P --dir D`: write the configuration of a PgBouncer in
front of database server NAME (tenants.pgbouncer), make the server ready for its lookups, and say how to start
it and what to set. `--lookup-sql` prints instead what a superuser runs on a server whose registered role is not
one (tenants.provisioning.pgbouncer_auth)."""

from django.core.management.base import BaseCommand, CommandError

from tenants.models import MAIN_SERVER
from tenants.pgbouncer import write_config
from tenants.provisioning.pgbouncer_auth import LOOKUP_SQL


class Command(BaseCommand):
    help = "Write pgbouncer.ini and its auth file for the PgBouncer of one database server."

    def add_arguments(self, parser):
        parser.add_argument("--server", default=MAIN_SERVER, help="the database server's name (default: main)")
        parser.add_argument("--port", type=int, default=6432, help="the port PgBouncer listens on")
        parser.add_argument("--host", default="127.0.0.1", help="the address PgBouncer listens on")
        parser.add_argument("--dir", help="where to write the files (PgBouncer's socket, pid and log go there too)")
        parser.add_argument("--lookup-sql", action="store_true", help="print the superuser's SQL and stop")

    def handle(self, *args, **options):
        if options["lookup_sql"]:
            self.stdout.write(LOOKUP_SQL)
            return
        if not options["dir"]:
            raise CommandError("--dir is required")
        try:
            files = write_config(
                options["dir"], server=options["server"], listen_port=options["port"], listen_host=options["host"]
            )
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"wrote {files.ini} and {files.auth_file} (mode 0600)")
        self.stdout.write(
            f"server connections: at most {files.pool_size} per tenant database, {files.budget} in all "
            "(tenants.pgbouncer)"
        )
        if files.missing_lookup:
            self.stderr.write(
                f"{len(files.missing_lookup)} tenant database(s) lack the lookup function, which only a superuser "
                "can install: run `manage.py pgbouncer_config --lookup-sql` as a superuser in template1 and in "
                "each of: " + ", ".join(files.missing_lookup)
            )
        self.stdout.write(f"start it (not as root): {' '.join(files.command())}")
        self.stdout.write(
            f"then set, for the web and worker processes: DIQUIS_PGBOUNCER={files.setting(options['server'])}"
        )
