"""The errors of the tenants domain: plain exceptions with a message a user may read.

The domain knows nothing of HTTP. The API's one exception handler (diquis.exception_handler) gives each
kind its status: Refused 400, Conflict 409, InvalidCredentials 401, TenantInvalid and AccountDeactivated
403; the admin shows the message as it is.
"""


class TenantsError(Exception):
    """A request the domain refuses; `message` says why (the class's default unless one is given)."""

    message = "The request cannot be carried out"
    #: The camelCase field of the request the error is about, if one is (the API's `errors`).
    field = None

    def __init__(self, message=None, *, field=None):
        if message is not None:
            self.message = message
        if field is not None:
            self.field = field
        super().__init__(self.message)


class Refused(TenantsError):
    """Not allowed as asked, whatever the state (e.g. editing the root tenant)."""


class Conflict(TenantsError):
    """Not allowed in the present state of things (exists already, an operation in flight, wrong status)."""


class TenantExists(Conflict):
    message = "Tenant already exists"


class OperationInFlight(Conflict):
    """A job of the tenant's has not ended yet: one operation at a time."""

    message = "An operation on this tenant is still in progress"


class EmailInUse(Conflict):
    message = "Email already in use"


class InvalidCredentials(TenantsError):
    """The same words whether the email is unknown or the password wrong (API.md, "Tokens")."""

    message = "Invalid credentials"


class TenantInvalid(TenantsError):
    """An unknown tenant, or one its users may not use now (API.md, "Tenant resolution")."""

    message = "Tenant invalid"


class AccountDeactivated(TenantsError):
    message = "User account deactivated"


class NoServerAvailable(TenantsError):
    """No Active database server answers: an isolated tenant cannot be placed (the job retries, then fails)."""

    message = "No database server is available for the tenant's database"


class TenantDatabaseUnavailable(TenantsError):
    """The database server a tenant's data is on does not answer (down, unreachable, refusing its role): that
    tenant's calls get 503, while the main database and every other server carry on. `message` is API.md's line;
    the exception's text (what a job records) also names the server, never its address or credentials."""

    message = "Tenant database unavailable"

    def __init__(self, *, server):
        self.server = server
        super().__init__()
        self.args = (f"{self.message}: database server {server} does not answer",)


class ServerExists(Conflict):
    message = "Database server already exists"


class ServerInUse(Conflict):
    """Tenant databases are on the server, or on their way to it: drain it first."""

    message = "Tenant databases are still on this database server; drain it first"


class TenantBeingMoved(TenantsError):
    """A write refused while the tenant's database is being moved (its source takes no writes during the
    switchover, or during the whole copy of a pg_dump move): the client retries shortly (503, Retry-After)."""

    message = "Tenant is being moved; retry shortly"
