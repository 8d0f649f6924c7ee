import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models

ROOT_TENANT_ID = "root"


class ProvisioningStatus(models.TextChoices):
    PENDING = "Pending"
    PROVISIONING = "Provisioning"
    ACTIVE = "Active"
    FAILED = "Failed"
    UPDATING = "Updating"
    DELETING = "Deleting"
    MOVING = "Moving"


class Operation(models.TextChoices):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    MOVE = "move"


S = ProvisioningStatus
# The one table of legal status changes. Anything else is a bug, raised as IllegalTransition.
TRANSITIONS = {
    S.PENDING: {S.PROVISIONING, S.FAILED},
    S.PROVISIONING: {S.PROVISIONING, S.ACTIVE, S.FAILED},
    S.ACTIVE: {S.UPDATING, S.DELETING, S.MOVING},
    S.UPDATING: {S.UPDATING, S.ACTIVE, S.FAILED},
    S.FAILED: {S.PENDING, S.UPDATING, S.DELETING},
    S.DELETING: {S.DELETING, S.FAILED},
    # A move that fails leaves the tenant whole on its old server: Active again, with the error (API.md).
    S.MOVING: {S.MOVING, S.ACTIVE},
}
IN_FLIGHT = frozenset({S.PENDING, S.PROVISIONING, S.UPDATING, S.DELETING, S.MOVING})
MAIN_SERVER = "main"


class ServerStatus(models.TextChoices):
    ACTIVE = "Active"
    DRAINING = "Draining"
    DISABLED = "Disabled"


class DatabaseServer(models.Model):
    """A PostgreSQL server that holds tenant databases (API.md, "Database servers").

    `main`, the main database's own server, is always there (seeded by `migrate`); its connection settings
    are the main database's, so its row stores none. Another server's password is kept encrypted with the
    vault's key (tenants.vault) and never leaves the process that connects.
    """

    name = models.SlugField(primary_key=True, max_length=50)
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(default=5432)
    maintenance_database = models.CharField(max_length=63, default="postgres")
    user = models.CharField(max_length=63, blank=True)
    encrypted_password = models.TextField(blank=True, editable=False)
    weight = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=10, choices=ServerStatus.choices, default=ServerStatus.ACTIVE)
    created_on = models.DateTimeField(auto_now_add=True)
    # As last seen by a check (registration, placement, the health sweep); null before the first one.
    reachable = models.BooleanField(null=True, editable=False)
    last_checked = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["created_on", "name"]

    def __str__(self):
        return self.name

    @property
    def is_main(self):
        return self.name == MAIN_SERVER


class IllegalTransition(Exception):
    pass


class Tenant(models.Model):
    id = models.SlugField(primary_key=True, max_length=50)
    name = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)
    created_on = models.DateTimeField(auto_now_add=True, db_index=True)
    status = models.CharField(max_length=20, choices=ProvisioningStatus.choices, default=S.PENDING, db_index=True)
    provisioning_error = models.TextField(null=True, blank=True)
    last_provisioning_attempt = models.DateTimeField(null=True, blank=True)
    has_isolated_database = models.BooleanField(default=False)
    database_name = models.CharField(max_length=63, null=True, blank=True)
    # The server an isolated tenant's database is on (null for a shared tenant, and until it is placed).
    database_server = models.ForeignKey(
        DatabaseServer, null=True, blank=True, on_delete=models.PROTECT, related_name="tenants"
    )
    # While a move runs: the server the tenant's database is being copied to.
    move_target = models.ForeignKey(
        DatabaseServer, null=True, blank=True, on_delete=models.PROTECT, related_name="incoming_tenants"
    )
    admin_email = models.EmailField()
    # For retries: the operation in flight (or the last one), how many attempts it has had, who asked.
    operation = models.CharField(max_length=10, choices=Operation.choices, default=Operation.CREATE)
    attempt_count = models.PositiveIntegerField(default=0)
    initiated_by = models.UUIDField(null=True, blank=True)
    # True once creation has succeeded: a failed *update* leaves the tenant usable.
    is_provisioned = models.BooleanField(default=False)
    # The admin's password, Fernet-encrypted, only until the job has created the admin user.
    encrypted_admin_password = models.TextField(null=True, blank=True, editable=False)
    # Carried by every token of its users; a deactivation raises it, so no token issued before one works again.
    token_generation = models.PositiveIntegerField(default=0, editable=False)
    # The migration fingerprint (provisioning.template.migration_fingerprint) an isolated tenant's database was
    # left at by the last job that touched it: "who is behind" without a connection to any tenant database.
    # Null: not known (a database made before this was recorded, or none yet): behind until a job looks.
    schema_fingerprint = models.CharField(max_length=64, null=True, blank=True, editable=False, db_index=True)

    class Meta:
        ordering = ["-created_on"]

    def __str__(self):
        return f"{self.name} ({self.id})"

    @property
    def is_root(self):
        return self.id == ROOT_TENANT_ID

    @property
    def in_flight(self):
        return self.status in IN_FLIGHT

    @property
    def is_usable(self):
        """May users sign in and call the API in this tenant? (API.md, "Tenant resolution")"""
        if self.is_root:
            return True
        return self.is_active and self.is_provisioned and self.status != S.DELETING

    def transition(self, new_status):
        if new_status not in TRANSITIONS[self.status]:
            raise IllegalTransition(f"tenant {self.id}: {self.status} -> {new_status}")
        self.status = new_status


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email, password=None, *, tenant_id=ROOT_TENANT_ID, roles=(), **fields):
        user = self.model(email=self.normalize_email(email).lower(), tenant_id=tenant_id, roles=list(roles), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **fields):
        return self.create_user(email, password, tenant_id=ROOT_TENANT_ID, roles=["root"], **fields)


class Role(models.TextChoices):
    ROOT = "root"
    ADMIN = "admin"
    # The original web client's third role: signs in and manages its own profile, as a basic user does.
    EDITOR = "editor"
    BASIC = "basic"


# The roles a tenant's admin may give a user (root is the seeded platform operator's only).
ASSIGNABLE_ROLES = (Role.ADMIN, Role.EDITOR, Role.BASIC)


class User(AbstractBaseUser):
    """A user of one tenant. Lives in the main database, or in its tenant's own one when isolated.

    The id is a UUID so that it is unique across every tenant database (notification groups use it).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant_id = models.CharField(max_length=50, db_index=True, default=ROOT_TENANT_ID)
    email = models.EmailField()
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    phone_number = models.CharField(max_length=50, blank=True)
    image_url = models.CharField(max_length=500, blank=True)
    roles = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    created_on = models.DateTimeField(auto_now_add=True)
    # The web client's own settings of the user (tenants.user_services.update_preferences): kept here so that
    # they follow the user from one browser to the next.
    preferences = models.JSONField(default=dict, blank=True)
    # Carried by the user's tokens: raised by a sign-out, a new password or a deactivation, it revokes them all.
    token_generation = models.PositiveIntegerField(default=0, editable=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        ordering = ["email"]
        constraints = [models.UniqueConstraint(fields=["tenant_id", "email"], name="one_email_per_tenant")]

    def __str__(self):
        return f"{self.email} ({self.tenant_id})"

    @classmethod
    def from_db(cls, db, field_names, values):
        user = super().from_db(db, field_names, values)
        user._active_when_loaded = user.is_active
        return user

    def save(self, *args, **kwargs):
        """A new password (set_password leaves the raw one in `_password` until saved; a rehash of the same
        password at sign-in does not) or a deactivation revokes the user's tokens, for good."""
        deactivated = getattr(self, "_active_when_loaded", False) and not self.is_active
        if not self._state.adding and (self._password is not None or deactivated):
            self.token_generation += 1
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "token_generation"}
        self._active_when_loaded = self.is_active
        super().save(*args, **kwargs)

    @property
    def is_root(self):
        return self.tenant_id == ROOT_TENANT_ID and Role.ROOT in self.roles

    # The Django admin is for root users only; they may do everything in it.
    @property
    def is_staff(self):
        return self.is_root

    @property
    def is_superuser(self):
        return self.is_root

    def has_perm(self, perm, obj=None):
        return self.is_active and self.is_root

    def has_perms(self, perm_list, obj=None):
        return self.is_active and self.is_root

    def has_module_perms(self, app_label):
        return self.is_active and self.is_root

    def get_full_name(self):
        return f"{self.first_name} {self.last_name}".strip()

    def get_short_name(self):
        return self.first_name or self.email


class UpgradeStatus(models.TextChoices):
    PENDING = "Pending"
    RUNNING = "Running"
    PAUSED = "Paused"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


U = UpgradeStatus
# An upgrade's legal status changes (API.md, "Tenant database upgrades"); anything else is IllegalTransition.
UPGRADE_TRANSITIONS = {
    U.PENDING: {U.RUNNING, U.PAUSED, U.SUCCEEDED, U.CANCELLED},
    U.RUNNING: {U.PAUSED, U.SUCCEEDED, U.FAILED, U.CANCELLED},
    U.PAUSED: {U.RUNNING, U.CANCELLED},
    U.SUCCEEDED: set(),
    U.FAILED: set(),
    U.CANCELLED: set(),
}
UPGRADE_OPEN = frozenset({U.PENDING, U.RUNNING, U.PAUSED})


class Upgrade(models.Model):
    """One rollout of the migration head (`target`) to every isolated tenant database behind it: a durable
    parent job and one child (UpgradeTenant) per tenant that was behind when it started (tenants.upgrades)."""

    status = models.CharField(max_length=10, choices=UpgradeStatus.choices, default=U.PENDING, db_index=True)
    target = models.CharField(max_length=64)
    # Isolated tenants when it started, and those of them already at the target (no child, never opened).
    total = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    canary = models.PositiveIntegerField()
    parallel = models.PositiveIntegerField()
    max_failures = models.PositiveIntegerField()
    initiated_by = models.UUIDField(null=True, blank=True)
    started_on = models.DateTimeField(auto_now_add=True)
    finished_on = models.DateTimeField(null=True, blank=True)
    # What stopped the whole upgrade (its template could not be built), or why it paused.
    error = models.TextField(blank=True)
    # The last UpgradeProgress sent (at most two a second, across its lanes).
    progress_sent_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-started_on", "-id"]

    def __str__(self):
        return f"upgrade {self.pk} to {self.target} [{self.status}]"

    @property
    def is_open(self):
        return self.status in UPGRADE_OPEN

    def transition(self, new_status):
        if new_status not in UPGRADE_TRANSITIONS[self.status]:
            raise IllegalTransition(f"upgrade {self.pk}: {self.status} -> {new_status}")
        self.status = new_status


class UpgradeTenantStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    # Gone or no longer behind when its turn came (deleted, or brought to the head by another job).
    SKIPPED = "skipped"


class UpgradeTenant(models.Model):
    """One tenant database of an upgrade. The tenant is named, not referenced: a tenant deleted meanwhile leaves
    its line (skipped) in the upgrade's history."""

    upgrade = models.ForeignKey(Upgrade, on_delete=models.CASCADE, related_name="children")
    tenant_id = models.CharField(max_length=50)
    database_server = models.CharField(max_length=50)
    is_canary = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=UpgradeTenantStatus.choices, default=UpgradeTenantStatus.PENDING)
    # The lane of the parent job (provisioning.rollout) that runs it while `running`: the bound per server counts
    # the lanes running children there.
    lane = models.PositiveIntegerField(null=True, blank=True)
    # A tenant whose lock another job holds (a move, an update) is tried again after this.
    not_before = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # How it was upgraded: the SQL compiled once per upgrade, or Django's executor (a migration runs Python).
    method = models.CharField(max_length=20, blank=True)

    class Meta:
        ordering = ["upgrade", "-is_canary", "id"]
        constraints = [models.UniqueConstraint(fields=["upgrade", "tenant_id"], name="one_child_per_tenant")]
        indexes = [models.Index(fields=["upgrade", "status"])]

    def __str__(self):
        return f"{self.tenant_id} in upgrade {self.upgrade_id} [{self.status}]"
