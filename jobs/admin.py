"""The durable job records in the admin, read-only: what RQ forgets (every attempt, its worker, timings,
steps, error and traceback) stays here. `history()` also feeds the attempt history of other admin pages."""

from django.conf import settings
from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django_rq.models import Dashboard

from .django_rq_pages import JobQueuesAdmin
from .models import Attempt, Job
from .registry import operation_name


def dashboard_url(rq_job_id):
    """rq-dashboard's page of one RQ job (instance 0: the project has one Redis)."""
    return f"{settings.JOB_DASHBOARD_MOUNT}/0/view/job/{rq_job_id}"


def history(subject):
    """Every job of `subject`, newest first, each with its attempts in order."""
    jobs = Job.objects.filter(subject=subject).prefetch_related("attempt_set").order_by("-created_at")
    return [
        {
            "job": job,
            "operation": operation_name(job.task),
            "attempts": [{"attempt": a, "dashboard_url": dashboard_url(a.rq_job_id)} for a in job.attempt_set.all()],
        }
        for job in jobs
    ]


class ReadOnlyAdmin(admin.ModelAdmin):
    """The records are written by the jobs alone; the admin only shows them."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _dashboard_link(attempt):
    if not attempt.rq_job_id:
        return "-"
    return format_html('<a href="{}">{}</a>', dashboard_url(attempt.rq_job_id), attempt.rq_job_id)


def _steps(attempt):
    if not attempt.steps:
        return "-"
    return format_html_join(
        "", "<div>{}: {} s</div>", ((step["name"], f"{step['seconds']:.3f}") for step in attempt.steps)
    )


def _duration(attempt):
    return "-" if attempt.duration is None else f"{attempt.duration:.3f} s"


class AttemptColumns:
    """The computed columns of an attempt, shown alike in the job's inline and the attempts' own list."""

    @admin.display(description="RQ job")
    def rq_job(self, attempt):
        return _dashboard_link(attempt)

    @admin.display(description="duration")
    def took(self, attempt):
        return _duration(attempt)

    @admin.display(description="steps")
    def step_timings(self, attempt):
        return _steps(attempt)


class AttemptInline(AttemptColumns, admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = ["number", "rq_job", "worker", "started_at", "ended_at", "took", "outcome", "step_timings", "error"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ["id", "operation", "subject", "status", "attempts", "max_attempts", "created_at", "finished_at"]
    list_filter = ["status", "task"]
    search_fields = ["=id", "subject"]
    ordering = ["-created_at"]
    inlines = [AttemptInline]

    @admin.display(description="operation", ordering="task")
    def operation(self, job):
        return operation_name(job.task)


@admin.register(Attempt)
class AttemptAdmin(AttemptColumns, ReadOnlyAdmin):
    list_display = ["__str__", "subject", "number", "outcome", "worker", "started_at", "ended_at", "took"]
    list_filter = ["outcome"]
    search_fields = ["job__subject", "rq_job_id"]
    ordering = ["-started_at"]
    list_select_related = ["job"]
    fields = [
        "job",
        "number",
        "rq_job",
        "worker",
        "started_at",
        "heartbeat_at",
        "ended_at",
        "took",
        "outcome",
        "step_timings",
        "error",
        "traceback",
    ]
    readonly_fields = fields

    @admin.display(description="subject", ordering="job__subject")
    def subject(self, attempt):
        return attempt.job.subject


# django-rq's admin module registers its entry first (its app is installed before this one); the project's
# version of it keeps django-rq's pages under the rules of /admin/rq/ (jobs.django_rq_pages).
if admin.site.is_registered(Dashboard):
    admin.site.unregister(Dashboard)
    admin.site.register(Dashboard, JobQueuesAdmin)
