"""The approach the job queue replaced, for comparison: the whole creation inside the request.

What the original service did (and what django-tenants does on `save()`): create the tenant's database
empty, migrate it, create its admin user (the password hash included), and only then answer 200. It
uses the project's own functions, so the only difference from the real path is *where* the work runs.
Mounted only by bench.settings; never part of the product.
"""

from rest_framework.views import APIView

from diquis.envelope import ok
from tenants.connections import database_name_for, use_tenant
from tenants.models import ProvisioningStatus, Role, Tenant, User
from tenants.permissions import IsRoot
from tenants.provisioning.databases import migrate_tenant_database
from tenants.provisioning.stores import main_store
from tenants.serializers import CreateTenantSerializer


class SyncCreateTenantView(APIView):
    permission_classes = [IsRoot]

    def post(self, request):
        body = CreateTenantSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        tenant = Tenant.objects.create(
            id=data["id"],
            name=data["name"],
            admin_email=data["adminEmail"].lower(),
            has_isolated_database=True,
            database_name=database_name_for(data["id"]),
            status=ProvisioningStatus.ACTIVE,
            is_provisioned=True,
        )
        main_store().create(tenant.database_name)
        migrate_tenant_database(tenant)
        with use_tenant(tenant):
            User.objects.create_user(data["adminEmail"], data["password"], tenant_id=tenant.id, roles=[Role.ADMIN])
        return ok(tenant.id, ["Tenant created."])
