"""Settings, read from the environment (and an optional `.env`) in this one place.

The variables of API.md are enough to run everything; every other value has a default or is derived.
"""

from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():  # without one, django-environ logs that, before LOGGING is in force
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is false.")
    # `make run` passes a fresh random key; this fallback only serves one-off DEBUG commands.
    SECRET_KEY = "django-insecure-diquis-development-only"

# A rotation: the new key in SECRET_KEY, the old ones here until what they signed has expired (sessions, JWTs,
# the tenant admin passwords waiting in the vault, which stay decryptable).
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
if not DEBUG:
    # Django's own measure of a weak key (security.W009), refused at start-up rather than only warned of. Not
    # applied to the fallbacks: rotating away from a weak key is what they are for.
    if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-"):
        raise ImproperlyConfigured(
            "SECRET_KEY must have at least 50 characters, 5 of them different, when DEBUG is false."
        )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])

# --- transport security (`manage.py check --deploy` passes with DEBUG=false) -----------------------------
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
# Sent by SecurityMiddleware on HTTPS responses only, so plain-HTTP development is unaffected.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Where TLS ends at a proxy, it redirects to HTTPS and says so in X-Forwarded-Proto; set these to match.
# SECURE_PROXY_SSL_HEADER=true trusts that header (only behind a proxy that always sets it): Django then
# knows a request was HTTPS, which HSTS, secure redirects, CSRF's origin check and the hub's Origin check need.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp) on every response: scripts, styles, images and connections from this
# origin only (the admin, Swagger UI and rq-dashboard ship their assets; the hub is same-origin). Swagger UI
# draws its icons as data: images. rq-dashboard's own pages need more (jobs.dashboard says what and why).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

INSTALLED_APPS = [
    "daphne",
    "diquis.apps.DiquisAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "diquis.apps.JobQueuesConfig",
    "jobs",
    "notifications",
    "tenants",
]
# A SaaS's own apps whose models live in each tenant's database (API.md; tenants.routing): installed after ours.
DIQUIS_TENANT_APPS = env.list("DIQUIS_TENANT_APPS", default=[])
INSTALLED_APPS += DIQUIS_TENANT_APPS

MIDDLEWARE = [
    # First: every response carries the request's id, and every line logged for it (diquis.request_context).
    "diquis.request_context.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # Static files (admin, Swagger UI, the live tenant page) served by the same Daphne, DEBUG or not.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "tenants.middleware.TenantMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "diquis.urls"
ASGI_APPLICATION = "diquis.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- databases -------------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default="sqlite:///var/db.sqlite3")}
# With persistent connections (`?conn_max_age=` in DATABASE_URL), a connection the server dropped (a
# restart) is tested before it is reused, instead of failing the first request or socket that gets it.
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# The web process (diquis.asgi) takes its main-database connections from a pool (diquis.database_pool).
DIQUIS_WEB_DATABASE_POOL = env.bool("DIQUIS_WEB_DATABASE_POOL", default=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    db_path = Path(DATABASES["default"]["NAME"])
    if not db_path.is_absolute():
        db_path = BASE_DIR / db_path
    db_path.parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["NAME"] = str(db_path)
    # Web and worker write to the same file: wait for the lock instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
DATABASE_ROUTERS = ["tenants.routing.TenantRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "tenants.User"
AUTHENTICATION_BACKENDS = ["tenants.backends.TenantEmailBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Argon2 first, as Django's docs recommend: memory-hard against GPU attacks, and cheaper per sign-in here than
# PBKDF2 at Django's default cost (bench/RESULTS.md measures both side by side). The rest is Django's
# own list, so a hash made by any of them still verifies and is rewritten as Argon2 at its user's next sign-in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
# `collectstatic` fills STATIC_ROOT (`make run` does); without it the apps' static dirs are served as they are.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# --- Redis, RQ, Channels -----------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")


def _with_redis_options(url, **options):
    """The URL with redis-py client options as query arguments (django-rq's URL form passes no others);
    options the URL sets itself win."""
    parts = urlsplit(url)
    query = {**{name: str(value) for name, value in options.items()}, **dict(parse_qsl(parts.query))}
    return urlunsplit(parts._replace(query=urlencode(query)))


# Without timeouts a hung Redis would hang the request that pushes a job after commit (it must answer 202
# at once, Redis or not) and every sweep. RQ's worker raises the read timeout of its own connection above
# its blocking dequeue by itself.
RQ_REDIS_URL = _with_redis_options(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
RQ_QUEUES = {"default": {"URL": RQ_REDIS_URL, "DEFAULT_TIMEOUT": 600}}
RQ = {"WORKER_CLASS": "jobs.worker.Worker"}

CHANNEL_LAYER_CAPACITY = env.int("CHANNEL_LAYER_CAPACITY", default=5000)
CHANNEL_LAYER_PREFIX = env.str("CHANNEL_LAYER_PREFIX", default="diquis:asgi")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    # redis-py 8 times reads out after 5 s, exactly the layer's blocking read (brpop 5 s):
                    # every idle socket would be dropped. Read timeout must outlast the blocking read.
                    "socket_timeout": 15,
                    # redis-py's async pool raises instead of waiting once full: room for connect bursts.
                    "max_connections": 10000,
                    # Without a retry, the first command on a connection pooled before a Redis restart
                    # fails, and the socket being opened with it hangs. Reconnect instead (connection
                    # errors only: a hung Redis is not retried into minutes).
                    "retry": AsyncRetry(
                        ExponentialBackoff(cap=1, base=0.05), 3, supported_errors=(RedisConnectionError,)
                    ),
                }
            ],
            # Over capacity the layer drops group messages silently; the persisted Notification is the
            # safety net, but with this headroom the live path does not lose them in a burst.
            "capacity": CHANNEL_LAYER_CAPACITY,
            "expiry": 60,
            "prefix": CHANNEL_LAYER_PREFIX,
        },
    }
}

# Shared by every process (throttle counters must be): Django's own Redis cache backend, on one connection pool
# per process (diquis.cache_pool: Django would make one per request under ASGI).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "diquis:cache",
        "OPTIONS": {
            "pool_class": "diquis.cache_pool.ProcessConnectionPool",
            "socket_connect_timeout": 2,
            "socket_timeout": 2,
            # A pooled connection outlives a Redis restart: its first command fails once, then reconnects.
            "retry": Retry(ExponentialBackoff(cap=1, base=0.05), 2, supported_errors=(RedisConnectionError,)),
        },
    }
}

# --- jobs -------------------------------------------------------------------------------------------
# Attempts per operation, and the wait before each retry (seconds; the last value repeats).
DIQUIS_JOB_MAX_ATTEMPTS = env.int("DIQUIS_JOB_MAX_ATTEMPTS", default=3)
DIQUIS_JOB_RETRY_INTERVALS = env.list("DIQUIS_JOB_RETRY_INTERVALS", cast=int, default=[5, 30, 120])
# How often a worker looks for operations that were accepted but never reached Redis, or were abandoned.
DIQUIS_SWEEP_INTERVAL = env.int("DIQUIS_SWEEP_INTERVAL", default=15)

# --- tenants ----------------------------------------------------------------------------------------
DIQUIS_ROOT_EMAIL = env.str("DIQUIS_ROOT_EMAIL", default="admin@email.com" if DEBUG else "")
DIQUIS_ROOT_PASSWORD = env.str("DIQUIS_ROOT_PASSWORD", default="Password123!" if DEBUG else "")

# --- Mail (password resets) --------------------------------------------------------------------------
# The console in DEBUG (the mail shows in the worker's output), SMTP otherwise, by Django's usual settings.
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="webmaster@localhost")
# Where Django's file backend (EMAIL_BACKEND=django.core.mail.backends.filebased.EmailBackend) writes the mails.
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(BASE_DIR / "var" / "mail"))
# How long a password reset token works (Django's default_token_generator).
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=3600)

# --- API --------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.authentication.TenantJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["diquis.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "diquis.exception_handler.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "diquis.openapi.OperationIdSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_RATES": {
        "login_address": env.str("LOGIN_RATE_PER_ADDRESS", default="30/min"),
        "login_email": env.str("LOGIN_RATE_PER_EMAIL", default="10/min"),
        # Per user: what costs the server a password hash (a user), a database (a tenant), new tokens.
        "user_create": env.str("USER_CREATE_RATE", default="30/min"),
        "tenant_create": env.str("TENANT_CREATE_RATE", default="60/min"),
        "token_refresh": env.str("TOKEN_REFRESH_RATE", default="30/min"),
        "password_change": env.str("PASSWORD_CHANGE_RATE", default="10/min"),
        # Forgot/reset password, per client address and per (tenant, email): what sends mail or sets a password.
        "password_reset_address": env.str("PASSWORD_RESET_RATE_PER_ADDRESS", default="10/min"),
        "password_reset_email": env.str("PASSWORD_RESET_RATE_PER_EMAIL", default="5/hour"),
    },
    # The client address of the throttles: REMOTE_ADDR unless NUM_PROXIES proxies of ours stand in front and
    # append to X-Forwarded-For (then the address they saw). 0 trusts no header; DRF's None would take the
    # whole header, which any client writes, as the address: every request a fresh budget.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=60)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "UPDATE_LAST_LOGIN": False,
    # simplejwt's AccessToken, verified with SECRET_KEY and then SECRET_KEY_FALLBACKS (a key rotation).
    "AUTH_TOKEN_CLASSES": ("tenants.signing.AccessToken",),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Diquis API",
    "DESCRIPTION": "Tenants of a multi-tenant SaaS, provisioned as background jobs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Two `status` fields with choices of their own: a tenant's and a database server's.
    "ENUM_NAME_OVERRIDES": {
        "ServerStatusEnum": "tenants.models.ServerStatus",
        # `role` of /api/users and `roleId` of /api/identity/users: the same roles an admin may give.
        "AssignableRoleEnum": "tenants.models.ASSIGNABLE_ROLES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "diquis.openapi.document_envelope_errors",
    ],
}

CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/(api|hubs)/.*$"
CORS_ALLOW_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "tenant",
    "x-requested-with",
    "x-signalr-user-agent",
)
CORS_ALLOW_CREDENTIALS = True

# `text` (the default): one line per record for a person, `<time> <level> <logger> <fields> <message>`, the fields
# being the request's and the job's that are set (`request=… user=… tenant=… job=… operation=… subject=… attempt=…
# step=…`, diquis.log_context). `json`: one JSON object per line with the same fields as keys (diquis.log_json), and
# Daphne's access log as such lines too (diquis.access_log). Both drop the secrets some URLs carry from every
# logger's lines (diquis.redaction).
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
LOG_FORMATS = ("text", "json")
if LOG_FORMAT not in LOG_FORMATS:
    raise ImproperlyConfigured(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "diquis.log_context.LogContextFilter"},
        "redact": {"()": "diquis.redaction.RedactSecrets"},
    },
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(context)s%(message)s"},
        "json": {"()": "diquis.log_json.JsonLines"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context", "redact"]}
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # The access log is written whatever LOG_LEVEL says, as Daphne writes it in the text format.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "diquis.access": {"level": "INFO"}},
}

# A running attempt writes a heartbeat this often; one silent for DIQUIS_ABANDONED_AFTER is re-run.
DIQUIS_HEARTBEAT_INTERVAL = env.int("DIQUIS_HEARTBEAT_INTERVAL", default=5)
DIQUIS_ABANDONED_AFTER = env.int("DIQUIS_ABANDONED_AFTER", default=30)
# How long a job waits for another job on the same subject (tenant) before its attempt fails.
DIQUIS_SUBJECT_LOCK_WAIT = env.int("DIQUIS_SUBJECT_LOCK_WAIT", default=60)
# Called once by each worker before it forks work-horses (jobs.worker.preload): what they load, each job
# would load again. The migration graph (a tenant database's template is named after it), the channel layer.
DIQUIS_WORKER_WARM_UP = [
    "tenants.provisioning.template.migration_fingerprint",
    "channels.layers.get_channel_layer",
]

# Isolated tenants' databases are named <prefix><tenant id>, the template they are cloned from
# <prefix>template_<fingerprint> (PostgreSQL), or are files of these names in a folder (SQLite).
DIQUIS_TENANT_DATABASE_PREFIX = env.str("DIQUIS_TENANT_DATABASE_PREFIX", default="diquis_")
# Clones of the template kept ready on PostgreSQL (tenants.provisioning.spares): creating an isolated tenant
# renames one instead of cloning while its admin waits. 0: none, every tenant's database is cloned on demand.
DIQUIS_SPARE_TENANT_DATABASES = env.int("DIQUIS_SPARE_TENANT_DATABASES", default=2)
DIQUIS_TENANT_SQLITE_DIR = Path(env.str("DIQUIS_TENANT_SQLITE_DIR", default=str(BASE_DIR / "var" / "tenants")))
# An extension point, not read from the environment: the dotted path of a callable that returns the
# DatabaseStore beside the main database (tenants.provisioning.stores). Empty: its PostgreSQL server, or the
# SQLite folder of the embedded default. The benchmarks' variant worker (bench/variant_worker.py) sets one.
DIQUIS_TENANT_DATABASE_STORE = ""
# Extra PostgreSQL servers for tenant databases (API.md): `name=postgres://user:password@host:port/db`, comma
# separated; `migrate` registers or updates each (tenants.servers). Connections to them give up after
# DIQUIS_SERVER_CONNECT_TIMEOUT seconds (libpq's connect_timeout; 2 is its smallest), so a server that is down
# answers its tenants 503 quickly instead of hanging them.
DIQUIS_DATABASE_SERVERS = env.str("DIQUIS_DATABASE_SERVERS", default="")
DIQUIS_SERVER_CONNECT_TIMEOUT = env.int("DIQUIS_SERVER_CONNECT_TIMEOUT", default=2)
# The database sessions a web or worker process may keep once its requests and jobs have ended, however
# many isolated tenants it has served: tenant databases' connections close when the request or job ends
# (tenants.connections); the main one's are the web process's pool (at most this many; diquis.database_pool),
# and close with the request elsewhere (CONN_MAX_AGE 0). The connection-bound test holds Daphne to it.
DIQUIS_MAX_IDLE_CONNECTIONS_PER_PROCESS = env.int("DIQUIS_MAX_IDLE_CONNECTIONS_PER_PROCESS", default=4)
# Pooled sessions to tenant databases (tenants.pools): a process keeps at most DIQUIS_TENANT_POOL_PER_SERVER idle
# sessions per database server (0: none, a session per request or job) and closes one idle for
# DIQUIS_TENANT_POOL_IDLE_SECONDS. A server sees at most (web processes + workers) x (this bound + threads) of
# them: keep that under its max_connections, with room for migrations and moves (`manage.py tenant_connections`).
DIQUIS_TENANT_POOL_PER_SERVER = env.int("DIQUIS_TENANT_POOL_PER_SERVER", default=20)
DIQUIS_TENANT_POOL_IDLE_SECONDS = env.float("DIQUIS_TENANT_POOL_IDLE_SECONDS", default=60.0)
# Servers whose tenant sessions go through a PgBouncer (tenants.pgbouncer): `name=host:port`, comma separated.
# Migrations, moves and locks still connect to the server itself (transaction pooling forbids session state).
DIQUIS_PGBOUNCER = {
    name.strip(): (address.rsplit(":", 1)[0], int(address.rsplit(":", 1)[1]))
    for name, _, address in (item.partition("=") for item in env.list("DIQUIS_PGBOUNCER", default=[]))
}
# Moving a tenant's database to another server (tenants.provisioning.moves): where pg_dump and pg_restore are
# (empty: what `pg_config --bindir` says), how long the copy may take (the initial copy of a logical move, or
# waiting for it to catch up while the tenant stays writable), and how long the target may take to replay the last
# writes once they are refused (the switchover: a longer wait fails the attempt, which gives writes back).
DIQUIS_POSTGRESQL_BIN_DIR = env.str("DIQUIS_POSTGRESQL_BIN_DIR", default="")
DIQUIS_MOVE_COPY_TIMEOUT = env.int("DIQUIS_MOVE_COPY_TIMEOUT", default=3600)
DIQUIS_MOVE_SWITCHOVER_TIMEOUT = env.int("DIQUIS_MOVE_SWITCHOVER_TIMEOUT", default=10)
# A move that ended leaves a copy to drop (the target's of a failed move, the source's of a finished one); a server
# that does not answer gets this many rounds of the job policy's attempts before the cleanup gives up (logged).
DIQUIS_MOVE_CLEANUP_ROUNDS = env.int("DIQUIS_MOVE_CLEANUP_ROUNDS", default=20)
# What a client refused a write during a move is told to wait (seconds, Retry-After).
DIQUIS_MOVE_RETRY_AFTER = env.int("DIQUIS_MOVE_RETRY_AFTER", default=2)
# How many tenants of a server that is drained are moved at once (tenants.tasks.continue_drain).
DIQUIS_DRAIN_PARALLELISM = env.int("DIQUIS_DRAIN_PARALLELISM", default=2)

# Upgrades of the tenant databases to a release's migrations (API.md; tenants.provisioning.rollout): what a request
# may ask for at most (`parallel`), how many of one server's databases migrate at once, how long a migration waits
# for a lock on a tenant's table (a long transaction of the tenant's) before it gives way and is tried again, how
# many times a tenant is tried again that way (or while its server does not answer) before it counts as failed.
DIQUIS_UPGRADE_MAX_PARALLEL = env.int("DIQUIS_UPGRADE_MAX_PARALLEL", default=32)
DIQUIS_UPGRADE_PER_SERVER = env.int("DIQUIS_UPGRADE_PER_SERVER", default=4)
DIQUIS_UPGRADE_LOCK_TIMEOUT = env.float("DIQUIS_UPGRADE_LOCK_TIMEOUT", default=5.0)
DIQUIS_UPGRADE_ATTEMPTS = env.int("DIQUIS_UPGRADE_ATTEMPTS", default=3)
# The first worker of a release that finds tenant databases behind the head starts an upgrade itself.
DIQUIS_AUTO_UPGRADE = env.bool("DIQUIS_AUTO_UPGRADE", default=False)
# Called once by each worker as it starts (jobs.worker.run_start_hooks), after its warm-up.
DIQUIS_WORKER_START_HOOKS = ["tenants.upgrade_services.start_upgrade_if_behind"] if DIQUIS_AUTO_UPGRADE else []

# The websocket refuses tokens whose tenant is no longer usable (given a list of tokens, a close code or None each).
NOTIFICATIONS_TOKEN_CHECK = "tenants.tokens.token_refusals"
# SignalR clients of the hub (API.md, "SignalR clients"; notifications/signalr.py says how a socket's framing
# is chosen). A browser that did not negotiate gets this long to send SignalR's handshake before it is
# taken as a plain client; the other three are SignalR's own defaults (its HubOptions), in seconds.
NOTIFICATIONS_HANDSHAKE_WAIT = env.float("NOTIFICATIONS_HANDSHAKE_WAIT", default=1.0)
SIGNALR_HANDSHAKE_TIMEOUT = env.float("SIGNALR_HANDSHAKE_TIMEOUT", default=15.0)
SIGNALR_KEEP_ALIVE_INTERVAL = env.float("SIGNALR_KEEP_ALIVE_INTERVAL", default=15.0)
SIGNALR_CLIENT_TIMEOUT = env.float("SIGNALR_CLIENT_TIMEOUT", default=30.0)
# An open socket checks again this often (seconds) that its token or session still stands, its user is still
# active and its tenant still usable, and closes (4401, or 4403 for the tenant) when not; a sign-out or a
# tenant's deactivation also closes it at once.
NOTIFICATIONS_RECHECK_INTERVAL = env.float("NOTIFICATIONS_RECHECK_INTERVAL", default=30.0)
# A socket opened with the admin's session cookie ends after this long (seconds) however active; the page's
# script reconnects, which checks the session afresh.
NOTIFICATIONS_SESSION_SOCKET_MAX_AGE = env.int("NOTIFICATIONS_SESSION_SOCKET_MAX_AGE", default=3600)
# Open sockets per user, across every server process (the next handshake is refused), counted in Redis.
NOTIFICATIONS_MAX_SOCKETS_PER_USER = env.int("NOTIFICATIONS_MAX_SOCKETS_PER_USER", default=20)
NOTIFICATIONS_PRESENCE_PREFIX = f"{CHANNEL_LAYER_PREFIX}:sockets"
# The most notifications one `?since=` replays; then a ReplayTruncated frame says where the REST list
# (GET /api/notifications?after=) takes over.
NOTIFICATIONS_REPLAY_LIMIT = env.int("NOTIFICATIONS_REPLAY_LIMIT", default=1000)

# Where rq-dashboard is mounted (jobs.dashboard); the admin links attempts to it.
JOB_DASHBOARD_MOUNT = "/rq"

# /metrics also answers a Prometheus scraper that sends `Authorization: Bearer <METRICS_TOKEN>` (unset: root only).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# Test hook: a JSON file naming a provisioning step to fail or hold (tenants.provisioning.faults). Unset in
# production.
DIQUIS_FAULTS_FILE = env.str("DIQUIS_FAULTS_FILE", default="")

# The custom user is unique per (tenant, email), not by email alone; TenantEmailBackend authenticates
# within one tenant, so Django's warning about a non-unique USERNAME_FIELD does not apply.
# security.W008: SECURE_SSL_REDIRECT is off by default because TLS normally ends at the proxy in front of
# Daphne, which does the redirect; set SECURE_SSL_REDIRECT=true where Daphne faces clients directly.
# security.W021: HSTS preload is a commitment for the whole domain, for its owner to opt in to
# (SECURE_HSTS_PRELOAD=true), not a default.
SILENCED_SYSTEM_CHECKS = ["auth.W004", "security.W008", "security.W021"]
