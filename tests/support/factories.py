import factory

from tenants.models import ProvisioningStatus, Role, Tenant, User


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    id = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.Sequence(lambda n: f"Tenant {n}")
    admin_email = factory.LazyAttribute(lambda t: f"admin@{t.id}.test")
    status = ProvisioningStatus.ACTIVE
    is_provisioned = True


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    tenant_id = "root"
    roles = factory.LazyFunction(lambda: [Role.BASIC])
    password = factory.PostGenerationMethodCall("set_password", "User-Password-123!")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()
