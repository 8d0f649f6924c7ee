"""What API.md says, written out once for the tests that check it (never derived from the serializers: a test
that read the fields from the code could not fail when the code drifts from the contract)."""

# API.md, "Tenants": the keys of a Tenant object (`databaseServer`: null for a shared tenant).
TENANT_FIELDS = frozenset(
    {
        "id",
        "name",
        "isActive",
        "createdOn",
        "status",
        "provisioningError",
        "lastProvisioningAttempt",
        "hasIsolatedDatabase",
        "adminEmail",
        "databaseServer",
    }
)

# The original web client's User (API.md, "Compatibility calls of the original web client"; the reference of its
# calls): what GET /api/identity/profile answers (plus `preferences`), and each user of /api/identity/users.
IDENTITY_USER_FIELDS = frozenset(
    {"id", "firstName", "lastName", "email", "phoneNumber", "isActive", "roleId", "imageUrl", "createdOn"}
)

# API.md, "Database servers": the keys of a Server object (`reachable`, as last seen, is added by GET; this API
# adds it to every Server object it answers, the 201 and the PATCH's 200 included).
SERVER_FIELDS = frozenset({"name", "host", "port", "status", "weight", "tenantCount", "createdOn", "reachable"})

# API.md, "Tenant database upgrades": the keys of an Upgrade object, plus what this API adds to it: `maxFailures`
# (as asked), `error` (why it paused or stopped) and `servers` (each server's counts).
UPGRADE_FIELDS = frozenset(
    {
        "id",
        "status",
        "target",
        "total",
        "done",
        "failed",
        "skipped",
        "canary",
        "parallel",
        "startedOn",
        "finishedOn",
        "failures",
        "maxFailures",
        "error",
        "servers",
    }
)
