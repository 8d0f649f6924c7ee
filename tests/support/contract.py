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
