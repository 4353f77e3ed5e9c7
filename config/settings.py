"""One settings module, driven by the environment (see README, "Configuration")."""

from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from .env import env_bool, env_int, env_list, env_str, parse_database_url

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false.")
    SECRET_KEY = "dev-only-insecure-key-not-for-production-use-0123456789abcdef"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "mptt",
    "axes",
    "orgs",
    "okrs",
    "dependencies",
    "alignment",
    "retros",
    "nudges",
    "ninja",  # its templates and static files: the API docs are served offline
    "api",
    "search",
    "history",
    "suggestions",
    "integrations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Every error under /api/ answers application/problem+json.
    "api.problems.ProblemMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "history.context.RequestActorMiddleware",
    # A write counts its author's "Needs me" again before answering (nudges.inbox).
    "nudges.inbox.InboxCountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "orgs.middleware.PlatformAdminScopeMiddleware",
    # Without a broker: beat's schedule runs in-process, after responses (orgs/beat.py).
    "orgs.beat.InProcessBeatMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into the "signing in is paused" page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "orgs.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "root"
LOGOUT_REDIRECT_URL = "login"

# Sign-in throttling (django-axes, see orgs/signin.py). The axes backend comes first: it refuses
# a locked-out account or address before any password is checked, so the right password is
# refused too while the lock lasts. Failures are counted in the database, which every gunicorn
# worker shares.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "orgs.signin.SignInAttempts"
AXES_FAILURE_LIMIT = env_int("SIGNIN_FAILURE_LIMIT", 5)  # per account, from anywhere
SIGNIN_ADDRESS_FAILURE_LIMIT = env_int("SIGNIN_ADDRESS_FAILURE_LIMIT", 20)  # per address
AXES_COOLOFF_TIME = timedelta(minutes=env_int("SIGNIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each alone, not the pair
AXES_USERNAME_FORM_FIELD = "username"  # what LoginView's form posts (it holds the email)
AXES_USERNAME_CALLABLE = "orgs.signin.username_of"  # lowercased: one account, one count
AXES_CLIENT_IP_CALLABLE = "orgs.signin.client_ip"
AXES_LOCKOUT_CALLABLE = "orgs.signin.locked_out_response"
AXES_RESET_ON_SUCCESS = True
# Attempts during a lock are refused but do not extend it, so the page can say when it ends.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_DISABLE_ACCESS_LOG = True  # no row per successful sign-in; failures are still counted
# Reverse proxies in front of gunicorn that append the client's address to X-Forwarded-For
# (e.g. 1 behind one TLS proxy). 0: no proxy, REMOTE_ADDR is the client and the header is ignored.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more.")

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dependencies.context_processors.unread_alerts",
                "nudges.context_processors.inbox_count",
            ],
        },
    },
]

DATABASES = {
    "default": parse_database_url(env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"))
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "static"
# gunicorn serves no files: in production WhiteNoise serves the collected, hashed and compressed
# static files (runserver serves them itself while debugging).
if not DEBUG:
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Email: console in the embedded default, SMTP when EMAIL_HOST is set.
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "OKR Alignment <okrs@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
_email_host = env_str("EMAIL_HOST")
if _email_host:
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": _email_host,
                "port": env_int("EMAIL_PORT", 25),
                "username": env_str("EMAIL_HOST_USER", ""),
                "password": env_str("EMAIL_HOST_PASSWORD", ""),
                "use_tls": env_bool("EMAIL_USE_TLS", False),
                "timeout": 10,
            },
        }
    }
elif env_str("EMAIL_FILE_PATH"):
    # One file per message in that folder: handy to read what a worker sent.
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": env_str("EMAIL_FILE_PATH")},
        }
    }
else:
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}

# Cache: Redis when REDIS_URL is set, so every gunicorn worker shares it (password-reset rate
# limits live there); local memory otherwise. Short socket timeouts: a hung Redis costs a
# request about a second, after which the rate limit is skipped (orgs/ratelimit.py).
def redis_cache(url):
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": "okrs",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }


CACHES = {
    "default": redis_cache(env_str("REDIS_URL")) if env_str("REDIS_URL")
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
# Password-reset emails: at most this many per email address and per client address an hour.
PASSWORD_RESET_WINDOW = 3600
PASSWORD_RESET_EMAIL_LIMIT = env_int("PASSWORD_RESET_EMAIL_LIMIT", 3)
PASSWORD_RESET_CLIENT_LIMIT = env_int("PASSWORD_RESET_CLIENT_LIMIT", 20)

# Celery: eager (in-process) unless a broker is configured.
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A hung broker (accepting, never answering) must not hang a request: every broker call is
# bounded. Without these, a publish waits forever on a dead socket and gunicorn answers 500
# after 30 s. The socket timeout stays above the worker's 1 s BRPOP poll.
BROKER_TIMEOUT = 1.5  # seconds, per connect and per read
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "socket_timeout": BROKER_TIMEOUT,
    "socket_connect_timeout": BROKER_TIMEOUT,
    "retry_on_timeout": False,
}
CELERY_BROKER_CONNECTION_TIMEOUT = BROKER_TIMEOUT
# One quick retry (a connection dropped by a broker restart), then orgs.tasks.enqueue_now runs
# the task in-process. A hung broker costs the first write about 3 timeouts (~4.5 s).
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
# After a failed publish, this process skips the broker for this long and runs tasks in-process
# at once, so later writes (and a write's second and third task) do not pay the timeout again.
BROKER_SKIP_AFTER_FAILURE = 15  # seconds
# Without a broker (eager mode, or the broker is down), a cycle's recompute runs in a background
# thread right after the response instead of inside it (orgs.tasks.enqueue_now). Tests turn it
# off, so the work is done when the request returns.
TASKS_DEFER_IN_PROCESS = env_bool("TASKS_DEFER_IN_PROCESS", True)
# Without a broker, the web process runs beat's schedule itself, after responses (orgs/beat.py).
BEAT_IN_PROCESS = env_bool("BEAT_IN_PROCESS", CELERY_TASK_ALWAYS_EAGER)
# A worker process that starts reads back, in a background thread, the saved network state of
# the cycles saved most recently (dependencies.network.warm_start), so that its first run of
# them is a warm run: "false" leaves the read back to each cycle's first run, as before.
NETWORK_WARM_START = env_bool("NETWORK_WARM_START", True)
# A worker process (and the bench) runs every misalignment rule over a large cycle whose units
# it neither keeps nor finds stored (a run from nothing; a restart reads the stored units and
# does not fork) in a child it forks, on another core, while it computes the network
# (alignment.report.fork_rules): "false" runs them one after the other in the process, as on a
# machine with one core. Web processes never fork for it (their threads).
NETWORK_FORK_RULES = env_bool("NETWORK_FORK_RULES", True)
# The worker and beat log through LOGGING below (organization and object on every line).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Immediate notifications (nudges.events): a burst within this many minutes is one email;
# at most this many reminder emails per person and week. Chat webhooks (nudges.chat): seconds
# before a post gives up; private addresses (loopback, LAN, cloud metadata) only when allowed.
NOTIFY_BUNDLE_MINUTES = env_int("NOTIFY_BUNDLE_MINUTES", 10)
NOTIFY_REMINDER_WEEKLY_CAP = env_int("NOTIFY_REMINDER_WEEKLY_CAP", 3)
CHAT_WEBHOOK_TIMEOUT = env_int("CHAT_WEBHOOK_TIMEOUT", 5)
CHAT_WEBHOOK_ALLOW_PRIVATE_HOSTS = env_bool("CHAT_WEBHOOK_ALLOW_PRIVATE_HOSTS", False)

CELERY_BEAT_SCHEDULE = {
    # Re-enqueue any cycle still marked dirty: a task lost while the broker was down.
    "network-sweep": {"task": "dependencies.tasks.sweep_network", "schedule": 60.0},
    # Pace moves with the calendar: recompute every running cycle once an hour.
    # Each organization's weekly digest goes out at its own local day and hour; this checks
    # every 15 minutes which organizations are due.
    "weekly-digests": {"task": "nudges.tasks.send_due_digests", "schedule": 900.0},
    # The outbox: emails due for a retry, or whose sender died mid-send, go again.
    "outbox-sweep": {"task": "nudges.tasks.sweep_outbox", "schedule": 60.0},
    # Data sources due for a pull; outbound webhooks due for a retry or stuck.
    "integrations-sweep": {"task": "integrations.tasks.sweep_integrations", "schedule": 60.0},
    "network-hourly": {"task": "dependencies.tasks.sweep_network", "schedule": 3600.0,
                       "kwargs": {"full": True}},
    # Unanswered requests and unresolved blockers climb the escalation ladder (days per step
    # per organization): checked every 15 minutes.
    "escalation-ladder": {"task": "dependencies.tasks.climb_ladders", "schedule": 900.0},
}

# Security. Every page runs under a strict CSP: scripts only from us, with the request's nonce.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# A container health check asks over plain http, from inside (see config/health.py).
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

# The REST API (api/): requests per token (or per signed-in person) and window in seconds;
# the largest page a list gives.
API_RATE_LIMIT = env_int("API_RATE_LIMIT", 600)
API_RATE_WINDOW = env_int("API_RATE_WINDOW", 60)
API_MAX_PAGE_SIZE = 200

# Product settings.
INVITATION_MAX_AGE_DAYS = env_int("INVITATION_MAX_AGE_DAYS", 7)
STALE_AFTER_DAYS = 14

# Logging: one line per event on stderr (gunicorn, the worker and beat alike, no
# --capture-output needed), each with the organization and the object it concerns when known
# (config.logs.ContextFilter). Request errors (django.request) are logged in production too,
# with the organization's slug from the URL; failed tasks and emails by config.logs' signal
# handlers.
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "config.logs.ContextFilter"}},
    "formatters": {
        "context": {
            "format": "%(asctime)s %(levelname)s %(name)s [org=%(org)s obj=%(obj)s] %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "filters": ["context"],
            "formatter": "context",
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Replaces Django's default handlers (they print only while DEBUG is on): Django's
        # records, request errors included, go to the root handler like everyone's.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
    },
}
