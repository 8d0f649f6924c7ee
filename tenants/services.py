"""The use cases a request (API or admin) starts: check the state, write the row, enqueue the job.

Each runs in one transaction with the durable job record (jobs.enqueue), and the job reaches Redis only
after commit. The slow work happens in tenants.tasks.
"""

from django.db import IntegrityError, transaction
from django.db.models import F

from jobs.enqueue import enqueue, requeue
from jobs.models import Job
from notifications.framing import REVOKED
from notifications.services import close_sockets

from . import tasks
from .exceptions import Conflict, NoServerAvailable, OperationInFlight, Refused, TenantExists
from .models import MAIN_SERVER, DatabaseServer, Operation, ProvisioningStatus, ServerStatus, Tenant, User
from .provisioning import placement
from .provisioning.stores import main_store
from .tasks import subject_for
from .vault import encrypt_password

S = ProvisioningStatus

# What a root admin is told when a creation is accepted (the API's 202 and the admin's message).
CREATION_INITIATED = "Tenant creation initiated. The tenant will be provisioned in the background."


def _locked_tenant(tenant_id):
    return Tenant.objects.select_for_update().get(pk=tenant_id)


def _start(tenant, *, status, operation, initiated_by):
    tenant.transition(status)
    tenant.operation = operation
    tenant.initiated_by = initiated_by
    tenant.provisioning_error = None
    tenant.save(update_fields=["status", "operation", "initiated_by", "provisioning_error"])


def _active_server(name):
    """A server a tenant's database may be put on: known and Active (Refused on `databaseServer` otherwise)."""
    server = DatabaseServer.objects.filter(pk=name).first()
    if server is None:
        raise Refused(f"Unknown database server '{name}'", field="databaseServer")
    if server.status != ServerStatus.ACTIVE:
        raise Refused(f"Database server '{name}' is {server.status}, not Active", field="databaseServer")
    return server


def _named_server(name, *, has_isolated_database):
    """The server a root admin asked for at creation, if any: known, Active, and for an isolated tenant only."""
    if name is None:
        return None
    if not has_isolated_database:
        raise Refused("A shared tenant has no database server of its own", field="databaseServer")
    return _active_server(name)


@transaction.atomic
def create_tenant(*, tenant_id, name, admin_email, password, has_isolated_database, initiated_by, database_server=None):
    """A new tenant, Pending, and the job that provisions it. An isolated tenant goes on `database_server` when
    named, else on the one provisioning.placement picks when the job starts."""
    server = _named_server(database_server, has_isolated_database=has_isolated_database)
    tenant = Tenant(
        id=tenant_id,
        name=name,
        admin_email=admin_email.lower(),
        has_isolated_database=has_isolated_database,
        database_server=server,
        status=S.PENDING,
        operation=Operation.CREATE,
        initiated_by=initiated_by,
        encrypted_admin_password=encrypt_password(password),
    )
    try:
        with transaction.atomic():
            tenant.save(force_insert=True)
    except IntegrityError as error:
        raise TenantExists() from error
    enqueue(
        tasks.provision_tenant, subject=subject_for(tenant.id), tenant_id=tenant.id, initiated_by=_plain(initiated_by)
    )
    return tenant


@transaction.atomic
def update_tenant(*, tenant_id, name, is_active, initiated_by):
    tenant = _locked_tenant(tenant_id)
    if tenant.is_root:
        raise Refused("Cannot edit root tenant")
    if tenant.in_flight:
        raise OperationInFlight()
    if not tenant.is_provisioned:
        raise Conflict("The tenant has not been created yet; retry its creation first")
    _start(tenant, status=S.UPDATING, operation=Operation.UPDATE, initiated_by=initiated_by)
    enqueue(
        tasks.apply_tenant_update,
        subject=subject_for(tenant.id),
        tenant_id=tenant.id,
        initiated_by=_plain(initiated_by),
        name=name,
        is_active=bool(is_active),
    )
    return tenant


@transaction.atomic
def delete_tenant(*, tenant_id, initiated_by):
    tenant = _locked_tenant(tenant_id)
    if tenant.is_root:
        raise Refused("Cannot delete root tenant")
    if tenant.in_flight:
        raise OperationInFlight()
    _start(tenant, status=S.DELETING, operation=Operation.DELETE, initiated_by=initiated_by)
    enqueue(
        tasks.deprovision_tenant, subject=subject_for(tenant.id), tenant_id=tenant.id, initiated_by=_plain(initiated_by)
    )
    return tenant


_RETRY_STATUS = {Operation.CREATE: S.PENDING, Operation.UPDATE: S.UPDATING, Operation.DELETE: S.DELETING}


@transaction.atomic
def retry_tenant(*, tenant_id, initiated_by):
    """Re-run the failed operation of a Failed tenant, with a fresh budget of attempts."""
    tenant = _locked_tenant(tenant_id)
    if tenant.status != S.FAILED:
        raise Conflict(f"Only a failed tenant can be retried (status is {tenant.status})")
    job = Job.objects.filter(subject=subject_for(tenant.id), status=Job.Status.FAILED).order_by("-created_at").first()
    if job is None:
        raise Conflict("There is no failed operation to retry")
    _start(tenant, status=_RETRY_STATUS[tenant.operation], operation=tenant.operation, initiated_by=initiated_by)
    # The job re-runs with the same arguments, but the notification goes to whoever asked for the retry.
    job.kwargs = {**job.kwargs, "initiated_by": _plain(initiated_by)}
    job.save(update_fields=["kwargs"])
    requeue(job)
    return tenant


def _move_target(tenant, name):
    """The server a move of `tenant` may go to: known, Active, another than the one it is on, and PostgreSQL at
    both ends (the embedded SQLite default has no server to move to or from)."""
    if not tenant.has_isolated_database:
        raise Refused("A shared tenant has no database of its own to move", field="databaseServer")
    server = _active_server(name)
    if server.name == (tenant.database_server_id or MAIN_SERVER):
        raise Refused(f"The tenant's database is on '{name}' already", field="databaseServer")
    if MAIN_SERVER in (server.name, tenant.database_server_id) and main_store().vendor != "postgresql":
        raise Refused("Only databases on PostgreSQL servers can be moved", field="databaseServer")
    return server


@transaction.atomic
def move_tenant(*, tenant_id, database_server, initiated_by):
    """Move an isolated tenant's database to the server `database_server` (API.md): Moving, and the job that
    copies, verifies and switches it (tenants.provisioning.moves). The tenant stays usable meanwhile."""
    tenant = _locked_tenant(tenant_id)
    server = _move_target(tenant, database_server)
    if tenant.in_flight:
        raise OperationInFlight()
    if tenant.status != S.ACTIVE or not tenant.database_name or tenant.database_server_id is None:
        raise Conflict(f"Only an Active tenant can be moved (status is {tenant.status})")
    tasks.start_move(tenant, target=server.name, initiated_by=initiated_by)
    return tenant


@transaction.atomic
def drain_server(*, name, initiated_by):
    """Move every tenant off the server `name` (API.md): it turns Draining (it takes no new tenants), and its
    tenants are moved by jobs, DIQUIS_DRAIN_PARALLELISM at a time (tasks.continue_drain: each move's end starts
    the next, so no job sits waiting for others). Conflict when no other server can take them."""
    server = DatabaseServer.objects.select_for_update().get(pk=name)
    if tasks.drainable_tenants(name).exists():
        try:
            placement.choose_server(excluding=[name])
        except NoServerAvailable as error:
            raise Conflict(f"No other database server can take the tenants of '{name}'") from error
    if server.status != ServerStatus.DRAINING:
        server.status = ServerStatus.DRAINING
        server.save(update_fields=["status"])
    tasks.continue_drain(name, initiated_by=initiated_by)
    return server


def _plain(user_id):
    return str(user_id) if user_id is not None else None


def revoke_tokens(*, user_id):
    """Sign the user out everywhere: no token issued until now works again (tenants.tokens), and the user's
    open sockets close. In the database of the current tenant, where the user lives."""
    User.objects.filter(pk=user_id).update(token_generation=F("token_generation") + 1)
    close_sockets(str(user_id), REVOKED)


def revoke_tokens_at_sign_out(sender, user=None, **kwargs):
    """Django's user_logged_out receiver: signing out of the admin signs the root out everywhere."""
    if user is not None:
        revoke_tokens(user_id=user.pk)
