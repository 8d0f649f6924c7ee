"""The Django admin for root users: tenants, with creation and retry through the same services as the API."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import password_validation

from . import services
from .models import ProvisioningStatus, Tenant
from .validators import validate_tenant_id


class TenantCreationForm(forms.ModelForm):
    id = forms.CharField(max_length=50, validators=[validate_tenant_id], help_text="Lowercase slug, e.g. demo-academy.")
    password = forms.CharField(widget=forms.PasswordInput, help_text="The password of the tenant's first admin.")

    class Meta:
        model = Tenant
        fields = ["id", "name", "admin_email", "has_isolated_database"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password"):
            from .models import User

            try:
                password_validation.validate_password(
                    cleaned["password"], user=User(email=cleaned.get("admin_email") or "")
                )
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned

    def validate_unique(self):
        """Uniqueness is the service's to check (it answers "Tenant already exists")."""


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "name",
        "status",
        "provisioning_error",
        "is_active",
        "has_isolated_database",
        "created_on",
        "last_provisioning_attempt",
    ]
    list_filter = ["status", "is_active", "has_isolated_database"]
    search_fields = ["id", "name"]
    ordering = ["-created_on"]
    actions = ["retry_provisioning"]
    readonly_fields = [
        "status",
        "provisioning_error",
        "last_provisioning_attempt",
        "database_name",
        "created_on",
        "attempt_count",
        "operation",
    ]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = TenantCreationForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["id", "name", "admin_email", "password", "has_isolated_database"]
        return ["id", "name", "is_active", "admin_email", "has_isolated_database", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["id", "admin_email", "has_isolated_database", *self.readonly_fields]

    def has_change_permission(self, request, obj=None):
        if obj is not None and (obj.is_root or obj.in_flight):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False  # deletion is a background job: see the "Delete" action of the API

    def save_model(self, request, obj, form, change):
        if not change:
            services.create_tenant(
                tenant_id=form.cleaned_data["id"],
                name=form.cleaned_data["name"],
                admin_email=form.cleaned_data["admin_email"],
                password=form.cleaned_data["password"],
                has_isolated_database=form.cleaned_data["has_isolated_database"],
                initiated_by=request.user.pk,
            )
            messages.info(request, "Tenant creation initiated. The tenant will be provisioned in the background.")
        else:
            services.update_tenant(
                tenant_id=obj.pk, name=obj.name, is_active=obj.is_active, initiated_by=request.user.pk
            )
            messages.info(request, "Tenant update initiated. The tenant will be updated in the background.")

    def log_addition(self, request, obj, message):
        """The row is the service's; the admin log entry waits for it to exist."""

    def response_add(self, request, obj, post_url_continue=None):
        return self.response_post_save_add(request, obj)

    @admin.action(description="Retry provisioning")
    def retry_provisioning(self, request, queryset):
        retried = 0
        for tenant in queryset.filter(status=ProvisioningStatus.FAILED):
            services.retry_tenant(tenant_id=tenant.pk, initiated_by=request.user.pk)
            retried += 1
        skipped = queryset.count() - retried
        messages.info(request, f"Retry initiated for {retried} tenant(s).")
        if skipped:
            messages.warning(request, f"{skipped} tenant(s) skipped: only failed tenants can be retried.")
