"""The Django admin for root users: the tenant page, live.

Every action goes through the same services as the API (tenants.services): the request only checks the
state, writes the row and enqueues the job, then says so; the work happens in a worker. The list and the
change page update themselves from the notification websocket (tenants/static/tenants/live.js).
"""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import password_validation
from django.contrib.auth.models import Group
from django.db.models import Count, Max
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.timezone import localtime

from jobs.admin import history
from notifications.models import Notification

from . import selectors, server_services, services
from .admin_upgrades import BehindTheHeadFilter  # also registers the Upgrades page
from .exceptions import TenantsError
from .models import DatabaseServer, ProvisioningStatus, ServerStatus, Tenant, User
from .validators import validate_tenant_id

S = ProvisioningStatus
# The statuses whose badge spins: a job is working on the tenant right now.
SPINNING = frozenset({S.PROVISIONING, S.UPDATING, S.DELETING, S.MOVING})
SPINNER = mark_safe('<span class="tenant-spinner" aria-hidden="true"></span>')

UPDATE_INITIATED = "Tenant update initiated for {}. It will be updated in the background."
DELETION_INITIATED = "Tenant deletion initiated for {}. It will be removed in the background."
RETRY_INITIATED = "Retry initiated for {}. The failed operation will run again in the background."
DRAIN_INITIATED = "Drain initiated for {}. Its tenants will be moved to other servers in the background."


def status_badge(tenant):
    """The coloured status of a tenant, with a spinner while a job works on it (see tenants/admin.css)."""
    spinner = SPINNER if tenant.status in SPINNING else ""
    return format_html(
        '<span class="tenant-badge tenant-badge--{}" data-tenant-id="{}" data-status="{}">{}{}</span>'
        '<div class="tenant-progress" data-progress-for="{}"></div>',
        tenant.status.lower(),
        tenant.pk,
        tenant.status,
        spinner,
        tenant.status,
        tenant.pk,
    )


def live_config(request):
    """For live.js: the newest notification this user already had when the page was rendered, so the
    socket replays (`?since=`) whatever comes between the render and the socket's opening."""
    newest = Notification.objects.filter(user_id=request.user.pk).aggregate(newest=Max("id"))["newest"]
    return {"since": newest or 0}


def _moment(value):
    return localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


class TenantCreationForm(forms.ModelForm):
    """The API's creation body, as a form: the same rules (id slug, reserved names, Django's password
    validators), and the same service behind it."""

    id = forms.CharField(max_length=50, validators=[validate_tenant_id], help_text="Lowercase slug, e.g. demo-academy.")
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False), help_text="The password of the tenant's first admin."
    )
    database_server = forms.ModelChoiceField(
        queryset=DatabaseServer.objects.filter(status=ServerStatus.ACTIVE),
        required=False,
        empty_label="Placed automatically",
        help_text="For an isolated tenant: the server its database goes on.",
    )

    class Meta:
        model = Tenant
        fields = ["id", "name", "admin_email", "has_isolated_database"]

    def clean_id(self):
        tenant_id = self.cleaned_data["id"]
        if Tenant.objects.filter(pk=tenant_id).exists():
            raise forms.ValidationError("Tenant already exists")
        return tenant_id

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password"):
            try:
                admin = User(email=cleaned.get("admin_email") or "")
                password_validation.validate_password(cleaned["password"], user=admin)
            except forms.ValidationError as error:
                self.add_error("password", error)
        if cleaned.get("database_server") and not cleaned.get("has_isolated_database"):
            self.add_error("database_server", "A shared tenant has no database server of its own.")
        return cleaned

    def validate_unique(self):
        """Checked in clean_id with the service's own words; the service re-checks under its transaction."""


# Roles live on the user (User.roles); Django's groups mean nothing here.
admin.site.unregister(Group)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["id", "name_and_error", "status_badge", "active", "isolated", "server", "created", "last_attempt"]
    list_filter = ["status", "is_active", "has_isolated_database", "database_server", BehindTheHeadFilter]
    search_fields = ["id", "name"]
    ordering = ["-created_on"]
    actions = ["retry", "activate", "deactivate", "delete_in_background"]
    status_fields = [
        "status_badge",
        "error",
        "operation",
        "attempt_count",
        "last_provisioning_attempt",
        "database_name",
        "database_server",
        "created_on",
    ]

    class Media:
        css = {"all": ["tenants/admin.css"]}
        js = ["tenants/hub.js", "tenants/live.js"]

    # --- columns and read-only fields --------------------------------------------------------------

    @admin.display(description="name", ordering="name")
    def name_and_error(self, tenant):
        if not tenant.provisioning_error:
            return tenant.name
        return format_html('{}<div class="tenant-error">{}</div>', tenant.name, tenant.provisioning_error)

    @admin.display(description="status", ordering="status")
    def status_badge(self, tenant):
        return status_badge(tenant)

    @admin.display(description="active", boolean=True, ordering="is_active")
    def active(self, tenant):
        return tenant.is_active

    @admin.display(description="isolated", boolean=True, ordering="has_isolated_database")
    def isolated(self, tenant):
        return tenant.has_isolated_database

    @admin.display(description="server", ordering="database_server")
    def server(self, tenant):
        return tenant.database_server_id or "-"

    @admin.display(description="created", ordering="created_on")
    def created(self, tenant):
        return _moment(tenant.created_on)

    @admin.display(description="last attempt", ordering="last_provisioning_attempt")
    def last_attempt(self, tenant):
        return _moment(tenant.last_provisioning_attempt)

    @admin.display(description="error")
    def error(self, tenant):
        return format_html('<span class="tenant-error">{}</span>', tenant.provisioning_error or "")

    # --- forms: creation (all fields) and change (name, active; only when no job is in flight) ------

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = TenantCreationForm
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            fields = ["id", "name", "admin_email", "password", "has_isolated_database", "database_server"]
            return [(None, {"fields": fields})]
        return [
            (None, {"fields": ["id", "name", "is_active", "admin_email", "has_isolated_database"]}),
            ("Provisioning", {"fields": self.status_fields}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["id", "admin_email", "has_isolated_database", *self.status_fields]

    def has_change_permission(self, request, obj=None):
        """Editing is not offered for root, nor while a job works on the tenant (the page is read-only)."""
        if obj is not None and (obj.is_root or obj.in_flight or not obj.is_provisioned):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        """Deletion is a background job (the action below); Django's synchronous delete is never offered."""
        return False

    def save_model(self, request, obj, form, change):
        """The row is written by the service, in one transaction with its job: nothing is saved here."""
        if not change:
            services.create_tenant(
                tenant_id=form.cleaned_data["id"],
                name=form.cleaned_data["name"],
                admin_email=form.cleaned_data["admin_email"],
                password=form.cleaned_data["password"],
                has_isolated_database=form.cleaned_data["has_isolated_database"],
                database_server=getattr(form.cleaned_data["database_server"], "name", None),
                initiated_by=request.user.pk,
            )
        else:
            services.update_tenant(
                tenant_id=obj.pk, name=obj.name, is_active=obj.is_active, initiated_by=request.user.pk
            )

    def save_related(self, request, form, formsets, change):
        """Nothing related is saved in the request either."""

    def log_addition(self, request, obj, message):
        """The row is the service's; the admin log would point at a row that may not exist yet."""

    def log_change(self, request, obj, message):
        """The change is the job's to make; it is recorded in the attempt history."""

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(request, services.CREATION_INITIATED, messages.INFO)
        return HttpResponseRedirect(reverse("admin:tenants_tenant_changelist"))

    def response_change(self, request, obj):
        self.message_user(request, UPDATE_INITIATED.format(obj.pk), messages.INFO)
        return HttpResponseRedirect(reverse("admin:tenants_tenant_change", args=[obj.pk]))

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """A refused update (e.g. a job started meanwhile) is said as a message, as the API says 409."""
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except TenantsError as error:
            self.message_user(request, error.message, messages.ERROR)
            target = "admin:tenants_tenant_change" if object_id else "admin:tenants_tenant_add"
            return HttpResponseRedirect(reverse(target, args=[object_id] if object_id else []))

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {**(extra_context or {}), "live_config": live_config(request)})

    def add_view(self, request, form_url="", extra_context=None):
        return super().add_view(request, form_url, {**(extra_context or {}), "live_config": live_config(request)})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        tenant = self.get_object(request, unquote(object_id))
        extra_context = {
            **(extra_context or {}),
            "live_config": live_config(request),
            "show_save_and_add_another": False,
        }
        if tenant is not None:
            extra_context["attempt_history"] = history(services.subject_for(tenant.pk))
            extra_context["tenant_actions"] = self.buttons(tenant)
        return super().change_view(request, object_id, form_url, extra_context)

    # --- actions: each one asks a service and says what it started ------------------------------------

    def _each(self, request, queryset, start, initiated):
        started, refused = [], []
        for tenant in queryset:
            try:
                start(tenant)
                started.append(tenant.pk)
            except TenantsError as error:
                refused.append(f"{tenant.pk}: {error.message}")
        if started:
            self.message_user(request, initiated.format(", ".join(started)), messages.INFO)
        for line in refused:
            self.message_user(request, line, messages.WARNING)

    @admin.action(description="Retry the failed operation of selected tenants")
    def retry(self, request, queryset):
        def start(tenant):
            services.retry_tenant(tenant_id=tenant.pk, initiated_by=request.user.pk)

        self._each(request, queryset, start, RETRY_INITIATED)

    @admin.action(description="Activate selected tenants")
    def activate(self, request, queryset):
        self._set_active(request, queryset, True)

    @admin.action(description="Deactivate selected tenants")
    def deactivate(self, request, queryset):
        self._set_active(request, queryset, False)

    def _set_active(self, request, queryset, is_active):
        def start(tenant):
            services.update_tenant(
                tenant_id=tenant.pk, name=tenant.name, is_active=is_active, initiated_by=request.user.pk
            )

        self._each(request, queryset, start, UPDATE_INITIATED)

    @admin.action(description="Delete selected tenants (in the background)")
    def delete_in_background(self, request, queryset):
        if request.POST.get("confirmed") != "yes":
            return TemplateResponse(
                request,
                "admin/tenants/tenant/delete_in_background.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Delete tenants?",
                    "opts": self.opts,
                    "tenants": queryset,
                    "action": "delete_in_background",
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                },
            )

        def start(tenant):
            services.delete_tenant(tenant_id=tenant.pk, initiated_by=request.user.pk)

        self._each(request, queryset, start, DELETION_INITIATED)
        return None

    # --- the same actions as buttons on the change page ----------------------------------------------

    def buttons(self, tenant):
        """The actions this tenant's state allows, as (url, label, method) for its change page."""
        if tenant.is_root:
            return []
        if tenant.status == S.FAILED:
            found = [("retry", "Retry", "post")]
        elif tenant.in_flight:
            return []
        else:
            found = [("deactivate", "Deactivate", "post") if tenant.is_active else ("activate", "Activate", "post")]
        found.append(("delete", "Delete", "get"))  # a confirmation page first
        return [
            (reverse(f"admin:tenants_tenant_{name}", args=[tenant.pk]), label, method) for name, label, method in found
        ]

    def get_urls(self):
        one = [
            path(
                f"<path:object_id>/{name}/", self.admin_site.admin_view(self.one(action)), name=f"tenants_tenant_{name}"
            )
            for name, action in [
                ("retry", "retry"),
                ("activate", "activate"),
                ("deactivate", "deactivate"),
                ("delete", "delete_in_background"),
            ]
        ]
        return [*one, *super().get_urls()]  # first: this "delete" replaces Django's synchronous one

    def one(self, action_name):
        """A view running one of the bulk actions on one tenant. It changes state, so only on POST (the
        delete action answers a GET with its confirmation page, whose form posts to the list)."""
        action = getattr(self, action_name)

        def view(request, object_id):
            tenant = get_object_or_404(Tenant, pk=unquote(object_id))
            page = reverse("admin:tenants_tenant_change", args=[tenant.pk])
            if request.method != "POST" and action_name != "delete_in_background":
                return HttpResponseRedirect(page)
            return action(request, Tenant.objects.filter(pk=tenant.pk)) or HttpResponseRedirect(page)

        return view


# --- database servers ----------------------------------------------------------------------------------------


class DatabaseServerRegistrationForm(forms.ModelForm):
    """The API's registration body, as a form, and the same service behind it: the server is tried for real
    when the form is cleaned, and what the service refuses shows as the form's error. The URL is a password field
    that is never rendered back, not even after an error."""

    url = forms.CharField(
        label="URL",
        max_length=server_services.URL_MAX_LENGTH,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=f"{server_services.URL_SHAPE} (port 5432 and database postgres by default). Never shown again.",
    )

    class Meta:
        model = DatabaseServer
        fields = ["name", "weight"]

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            self.instance = server_services.register_server(
                name=cleaned["name"], url=cleaned["url"], weight=cleaned["weight"]
            )
        except TenantsError as error:
            self.add_error(error.field if error.field in self.fields else None, error.message)
        return cleaned

    def validate_unique(self):
        """Checked by the service, with its own words (a 409 in the API)."""


@admin.register(DatabaseServer)
class DatabaseServerAdmin(admin.ModelAdmin):
    """The servers tenant databases live on: their load and health at a glance, registration (checked for real
    by the service) and their weight and status. Credentials are write-only: no page shows them."""

    list_display = ["name", "address", "status", "weight", "tenant_count", "reachability", "checked"]
    list_filter = ["status"]
    ordering = ["created_on", "name"]
    actions = ["drain"]
    readonly_fields = ["name", "address", "maintenance_database", "user", "tenant_count", "reachability", "checked"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(tenant_total=Count("tenants"))

    @admin.action(description="Drain selected servers (move every tenant to the others)")
    def drain(self, request, queryset):
        """The API's drain (services.drain_server), per server: it turns Draining, its tenants are moved by jobs."""
        for server in queryset:
            try:
                services.drain_server(name=server.name, initiated_by=request.user.pk)
            except TenantsError as error:
                self.message_user(request, error.message, messages.WARNING)
                continue
            self.message_user(request, DRAIN_INITIATED.format(server.name), messages.INFO)

    @admin.display(description="host:port")
    def address(self, server):
        if server.is_main:
            main = settings.DATABASES["default"]
            return f"{main.get('HOST') or '-'}:{main.get('PORT') or '-'} (the main database)"
        return f"{server.host}:{server.port}"

    @admin.display(description="tenants", ordering="tenant_total")
    def tenant_count(self, server):
        return server.tenant_total

    @admin.display(description="reachable", boolean=True, ordering="reachable")
    def reachability(self, server):
        return True if server.is_main else server.reachable

    @admin.display(description="last checked", ordering="last_checked")
    def checked(self, server):
        return _moment(server.last_checked)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = DatabaseServerRegistrationForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "url", "weight"]
        return [
            "name",
            "address",
            "maintenance_database",
            "user",
            "status",
            "weight",
            "tenant_count",
            "reachability",
            "checked",
        ]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        """Only a server no tenant is on (nor moving to) may go; `main` never (server_services.remove_server)."""
        if obj is None:
            return super().has_delete_permission(request)
        if obj.is_main or selectors.tenants_on_server(obj.pk).exists():
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, through the service
        return actions

    def save_model(self, request, obj, form, change):
        """A new server is written by the service as the form is cleaned; a change goes through it too."""
        if change:
            server_services.update_server(name=obj.pk, weight=obj.weight, status=obj.status)

    def delete_model(self, request, obj):
        server_services.remove_server(name=obj.pk)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except TenantsError as error:
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:tenants_databaseserver_change", args=[object_id]))
