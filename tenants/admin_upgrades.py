"""The Django admin's Upgrades page for root users, and the tenant list's "behind the head" filter.

Nothing is changed here by hand: starting, pausing, resuming and cancelling an upgrade go through
tenants.upgrade_services (what the API calls), and what they refuse (a 409 in the API) is said as a message. The
figures come from tenants.selectors. An upgrade's page stays current by itself (tenants/static/tenants/upgrades.js):
the notification websocket's Upgrade* frames move its bar, and its figures view (JSON) fills in the rest after a
frame, and every few seconds while the upgrade is open: often when the socket is down, now and then when it is up
(frames go to the root who started the upgrade only).
"""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.timezone import localtime

from . import selectors, upgrade_services
from .exceptions import Conflict, TenantsError
from .models import UPGRADE_OPEN, Upgrade, UpgradeStatus, User
from .provisioning.template import migration_fingerprint
from .serializers import UpgradeSerializer

U = UpgradeStatus
NOTHING_BEHIND = "Every tenant database is at the head already: upgrade {} had nothing to do."
# The form's names of the service's fields (validate_options names them as the API does).
FORM_FIELDS = {"canary": "canary", "parallel": "parallel", "maxFailures": "max_failures"}
SPINNER = mark_safe('<span class="tenant-spinner" aria-hidden="true"></span>')


# --- the figures: one function for the page, the list's rows and the JSON view -----------------------------------


def _moment(value):
    return localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def tally(upgrade):
    """{"total", "done", "failed", "skipped"} (the API's) of an upgrade annotated by selectors.upgrade_list."""
    return {
        "total": upgrade.total,
        "done": upgrade.done,
        "failed": upgrade.failed,
        "skipped": upgrade.skipped + upgrade.children_skipped,
    }


def seconds_left(upgrade, counts, now):
    """At the rate so far: the tenant databases this upgrade has got through (not those it skipped at its start)
    per second since it started. None while nothing is known (nothing finished yet) or it is not running."""
    if upgrade.status not in (U.PENDING, U.RUNNING):
        return None
    through = counts["done"] + counts["failed"] + counts["skipped"] - upgrade.skipped
    left = counts["total"] - counts["done"] - counts["failed"] - counts["skipped"]
    if through <= 0 or left <= 0:
        return None
    elapsed = max((now - upgrade.started_on).total_seconds(), 0.0)
    return left * elapsed / through


def duration(seconds):
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {round(rest / 60)} min"


def eta(upgrade, counts, now=None):
    """The words under the bar: how long is left (or took), or why it is not known."""
    now = now or timezone.now()
    if upgrade.finished_on is not None:
        return f"took {duration((upgrade.finished_on - upgrade.started_on).total_seconds())}"
    if upgrade.status == U.PAUSED:
        return "paused"
    left = seconds_left(upgrade, counts, now)
    return "estimating…" if left is None else f"about {duration(left)} left"


def figures(upgrade):
    """Everything an upgrade's page shows, for the JSON view and the templates: the API's upgrade (servers,
    failures) plus the words of its ETA, when it finished (local time, as the page says it) and its buttons."""
    data = dict(UpgradeSerializer(upgrade).data)
    data["eta"] = eta(upgrade, data)
    data["finishedAt"] = _moment(upgrade.finished_on)
    data["actions"] = upgrade_services.allowed_actions(upgrade)
    return data


def status_badge(upgrade):
    return format_html(
        '<span class="tenant-badge tenant-badge--{}" data-upgrade-status="{}">{}{}</span>',
        upgrade.status.lower(),
        upgrade.status,
        SPINNER if upgrade.status == U.RUNNING else "",
        upgrade.status,
    )


def progress(upgrade, counts):
    context = {"upgrade": upgrade, **counts, "through": counts["done"] + counts["failed"] + counts["skipped"]}
    return render_to_string("admin/tenants/upgrade/progress.html", {**context, "eta": eta(upgrade, counts)})


# --- the tenant list's filter --------------------------------------------------------------------------------------


class BehindTheHeadFilter(admin.SimpleListFilter):
    """Isolated tenants whose database is not (as far as the catalog knows) at this release's migration head: those
    an upgrade would take; or those that are. Shared tenants are in neither (their tables are the catalog's)."""

    title = "schema"
    parameter_name = "schema"
    BEHIND, AT_HEAD = "behind", "at-head"

    def lookups(self, request, model_admin):
        return [(self.BEHIND, "Behind the head"), (self.AT_HEAD, "At the head")]

    def queryset(self, request, queryset):
        head = migration_fingerprint()
        if self.value() == self.BEHIND:
            return queryset.filter(pk__in=selectors.tenants_behind(head).values("pk"))
        if self.value() == self.AT_HEAD:
            return queryset.filter(pk__in=selectors.isolated_tenants().filter(schema_fingerprint=head).values("pk"))
        return queryset


# --- the Upgrades page ---------------------------------------------------------------------------------------------


class StartUpgradeForm(forms.Form):
    """The API's start body (POST /api/upgrades), with its defaults; the service checks it again."""

    canary = forms.IntegerField(
        min_value=0,
        initial=upgrade_services.DEFAULT_CANARY,
        help_text="Tenant databases upgraded first, spread over the servers: the rest start only if they all succeed.",
    )
    parallel = forms.IntegerField(
        min_value=1,
        max_value=settings.DIQUIS_UPGRADE_MAX_PARALLEL,
        initial=upgrade_services.DEFAULT_PARALLEL,
        help_text="Tenant databases upgraded at once.",
    )
    max_failures = forms.IntegerField(
        label="Max failures",
        min_value=0,
        initial=upgrade_services.DEFAULT_MAX_FAILURES,
        help_text="More failed tenant databases than this pause the upgrade.",
    )


@admin.register(Upgrade)
class UpgradeAdmin(admin.ModelAdmin):
    """Read-only: no upgrade is added, edited or deleted by hand."""

    list_display = ["name", "status_badge", "short_target", "progress", "canary", "parallel", "max_failures"]
    list_display += ["started", "finished"]
    list_filter = ["status"]
    actions = None
    fields = ["status_badge", "target", "progress", "canary", "parallel", "max_failures", "initiator"]
    fields += ["started", "finished", "error"]
    readonly_fields = fields

    class Media:
        css = {"all": ["tenants/admin.css"]}
        js = ["tenants/hub.js", "tenants/upgrades.js"]

    def get_queryset(self, request):
        return selectors.upgrade_list()  # with the counts of the children

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    # --- columns and read-only fields -----------------------------------------------------------------------

    @admin.display(description="upgrade", ordering="id")
    def name(self, upgrade):
        """Not str(upgrade): its status is in the next column, kept current there."""
        return f"Upgrade {upgrade.pk}"

    @admin.display(description="status", ordering="status")
    def status_badge(self, upgrade):
        return status_badge(upgrade)

    @admin.display(description="target")
    def short_target(self, upgrade):
        return format_html("<code>{}</code>", upgrade.target)

    @admin.display(description="progress")
    def progress(self, upgrade):
        return progress(upgrade, tally(upgrade))

    @admin.display(description="started", ordering="started_on")
    def started(self, upgrade):
        return _moment(upgrade.started_on)

    @admin.display(description="finished", ordering="finished_on")
    def finished(self, upgrade):
        return format_html('<span data-upgrade-field="finishedAt">{}</span>', _moment(upgrade.finished_on))

    @admin.display(description="initiated by")
    def initiator(self, upgrade):
        if upgrade.initiated_by is None:
            return "manage.py migrate_tenants"
        user = User.objects.filter(pk=upgrade.initiated_by).first()
        return user.email if user else str(upgrade.initiated_by)

    @admin.display(description="error")
    def error(self, upgrade):
        return format_html('<span class="tenant-error" data-upgrade-field="error">{}</span>', upgrade.error)

    # --- pages ----------------------------------------------------------------------------------------------

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {**(extra_context or {}), "start_url": self._url("start")})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        upgrade = self._upgrade_or_404(object_id)
        extra_context = {
            **(extra_context or {}),
            "subtitle": f"Upgrade {upgrade.pk} to {upgrade.target}",  # its status is below, kept current
            "figures": figures(upgrade),
            "figures_url": self._url("figures", upgrade),
            "upgrade_actions": [
                (name, name.capitalize(), self._url(name, upgrade)) for name in upgrade_services.ACTIONS
            ],
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def figures_view(self, request, object_id):
        """The figures of the page as JSON (upgrades.js reads them): the API's upgrade, for a session."""
        return JsonResponse(figures(self._upgrade_or_404(object_id)))

    def start_view(self, request):
        """The start form; its POST starts an upgrade as POST /api/upgrades does."""
        form = StartUpgradeForm(request.POST if request.method == "POST" else None)
        if form.is_bound and form.is_valid():
            options = form.cleaned_data
            try:
                upgrade = upgrade_services.start_upgrade(
                    initiated_by=request.user.pk,
                    canary=options["canary"],
                    parallel=options["parallel"],
                    max_failures=options["max_failures"],
                )
            except Conflict as error:
                self.message_user(request, error.message, messages.ERROR)
                return HttpResponseRedirect(self._url("changelist"))
            except TenantsError as error:
                form.add_error(FORM_FIELDS.get(error.field), error.message)
            else:
                said = upgrade_services.UPGRADE_INITIATED if upgrade.is_open else NOTHING_BEHIND.format(upgrade.pk)
                self.message_user(request, said, messages.INFO)
                return HttpResponseRedirect(self._url("change", upgrade))
        head = migration_fingerprint()
        context = {
            **self.admin_site.each_context(request),
            "title": "Start an upgrade",
            "opts": self.opts,
            "form": form,
            "head": head,
            "behind": selectors.tenants_behind(head).count(),
            "candidates": selectors.isolated_tenants().count(),
            "behind_url": reverse("admin:tenants_tenant_changelist") + f"?{BehindTheHeadFilter.parameter_name}=behind",
            "open_upgrade": Upgrade.objects.filter(status__in=UPGRADE_OPEN).first(),
        }
        return TemplateResponse(request, "admin/tenants/upgrade/start.html", context)

    def action_view(self, action):
        """A view that asks the service for one action (pause, resume, cancel) on POST, says what it answered,
        and goes back to the upgrade's page."""
        service, accepted = upgrade_services.ACTIONS[action]

        def view(request, object_id):
            upgrade = self._upgrade_or_404(object_id)
            if request.method == "POST":
                try:
                    service(upgrade_id=upgrade.pk)
                except TenantsError as error:
                    self.message_user(request, error.message, messages.ERROR)
                else:
                    self.message_user(request, accepted, messages.INFO)
            return HttpResponseRedirect(self._url("change", upgrade))

        return view

    def get_urls(self):
        wrap = self.admin_site.admin_view
        ours = [
            path("start/", wrap(self.start_view), name="tenants_upgrade_start"),
            path("<path:object_id>/figures/", wrap(self.figures_view), name="tenants_upgrade_figures"),
            *(
                path(f"<path:object_id>/{action}/", wrap(self.action_view(action)), name=f"tenants_upgrade_{action}")
                for action in upgrade_services.ACTIONS
            ),
        ]
        return [*ours, *super().get_urls()]

    def _url(self, name, upgrade=None):
        return reverse(f"admin:tenants_upgrade_{name}", args=[] if upgrade is None else [upgrade.pk])

    def _upgrade_or_404(self, object_id):
        object_id = unquote(object_id)
        upgrade = selectors.get_upgrade(int(object_id)) if object_id.isdigit() else None
        if upgrade is None:
            raise Http404(f"No upgrade {object_id}")
        return upgrade
