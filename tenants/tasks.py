"""The RQ job functions of tenants. Thin: plain ids in, the provisioning steps do the work."""

from jobs.registry import durable_task

from . import provisioning, spare_databases
from .template_database import ensure_template


@durable_task(on_final_failure=provisioning.operation_failed)
def provision_tenant(tenant_id, initiated_by):
    provisioning.provision_tenant(tenant_id, initiated_by)


@durable_task(on_final_failure=provisioning.operation_failed)
def update_tenant(tenant_id, initiated_by, name, is_active):
    provisioning.update_tenant(tenant_id, initiated_by, name, is_active)


@durable_task(on_final_failure=provisioning.operation_failed)
def deprovision_tenant(tenant_id, initiated_by):
    provisioning.deprovision_tenant(tenant_id, initiated_by)


@durable_task()
def refill_spare_databases():
    spare_databases.refill(ensure_template())
