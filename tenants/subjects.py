"""The subjects of the tenants domain's jobs: jobs of one subject never run at once (jobs.locks)."""


def subject_for(tenant_id):
    """Every job of one tenant has this subject, and an upgrade holds it while it migrates the tenant."""
    return f"tenant:{tenant_id}"


def spare_refill_subject(server):
    """Spares are per server, and so is their refill: one waiting refill per server at most."""
    return f"tenant-database-spares:{server}"


def upgrade_subject(upgrade_id):
    """An upgrade's parent job: one run of it at a time."""
    return f"upgrade:{upgrade_id}"


def tenant_of_subject(subject):
    """The tenant a job of `subject` works on (subject_for's inverse), or None for a job on no one tenant."""
    prefix = subject_for("")
    return subject.removeprefix(prefix) if subject.startswith(prefix) else None


def password_reset_subject(tenant_id):
    """The reset mails of one tenant's users: sent one at a time, and named apart from the tenant's own jobs."""
    return f"password-reset:{tenant_id}"
