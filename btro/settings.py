"""Settings: the environment is read here and nowhere else.

With no variable set, BTRO runs embedded: SQLite, local files, an in-process worker, the
dsp engine. DATABASE_URL, BROKER_URL, CACHE_URL and AWS_STORAGE_BUCKET_NAME turn the same
code into a web tier plus worker machines.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

VAR_DIR = Path(env("BTRO_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = env("SECRET_KEY", default="insecure-dev-key-change-me-in-production-0123456789")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env("SITE_URL", default="")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_dramatiq",
    "accounts",
    "jobs",
    "webhooks",
    "dashboard",
]

MIDDLEWARE = [
    # Requests by view, method and status for /metrics (django-prometheus; btro/metrics.py).
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "btro.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "dashboard.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "btro.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "btro.urls"
WSGI_APPLICATION = "btro.wsgi.application"
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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Request threads, the embedded worker and the sweep write at once. WAL lets reads run
    # beside a write; IMMEDIATE takes the write lock when a transaction begins, where the
    # busy timeout waits for it (a deferred one that reads first and then writes fails at
    # once with "database is locked" when another thread wrote in between).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=20,
        transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    )
    # Tests get a file too, not Django's shared-cache in-memory database: there a write that
    # meets another thread's read fails at once ("database table is locked") instead of
    # waiting out the busy timeout, so tests with a worker thread were flaky.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://btro")}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    CACHES["default"]["BACKEND"] = "btro.cache.RedisCache"  # fewer round trips a request
# API keys (with their user) are kept this long in the cache, so a request needs no query to
# authenticate; a revoke or roll bumps the key's generation there, which ends it at once. Off
# by default with a per-process cache: another process's revoke could not reach it. (A user
# made inactive outside the services, in a shell, is seen within this time.)
BTRO_API_KEY_CACHE_SECONDS = env.int(
    "BTRO_API_KEY_CACHE_SECONDS",
    default=0 if "locmem" in CACHES["default"]["BACKEND"].lower() else 60,
)

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "dashboard:login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "dashboard:login"

# EMAIL_URL (smtp+tls://user:password@host:587) wins; else EMAIL_BACKEND; else the console.
if env("EMAIL_URL", default=""):
    globals().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="BTRO <noreply@localhost>")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns at start-up about a missing one
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(VAR_DIR / "media")))

# Storage: local files by default, an S3-compatible bucket when one is named.
AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME", default="")
AWS_S3_ENDPOINT_URL = env("AWS_S3_ENDPOINT_URL", default=None)
AWS_S3_REGION_NAME = env("AWS_S3_REGION_NAME", default=None)
AWS_DEFAULT_ACL = None
AWS_QUERYSTRING_AUTH = True
AWS_S3_SIGNATURE_VERSION = "s3v4"
# A stem download answers a redirect to a URL signed for this long: bytes skip the web tier.
AWS_QUERYSTRING_EXPIRE = env.int("BTRO_DOWNLOAD_URL_SECONDS", default=300)
# Files past this size are written in parts of this size, each retried on its own.
BTRO_S3_MULTIPART_BYTES = env.int("BTRO_S3_MULTIPART_MB", default=16) * 1024 * 1024
if AWS_STORAGE_BUCKET_NAME:
    from boto3.s3.transfer import TransferConfig

    AWS_S3_TRANSFER_CONFIG = TransferConfig(
        multipart_threshold=BTRO_S3_MULTIPART_BYTES, multipart_chunksize=BTRO_S3_MULTIPART_BYTES
    )
    _media_storage = {"BACKEND": "storages.backends.s3.S3Storage"}
else:
    _media_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _media_storage,
    "staticfiles": {
        "BACKEND": env(
            "STATICFILES_STORAGE",
            default="whitenoise.storage.CompressedManifestStaticFilesStorage",
        )
    },
}

# Uploads stream to disk past 2.5 MB; the size limit is checked as bytes arrive.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
BTRO_MAX_UPLOAD_BYTES = env.int("BTRO_MAX_UPLOAD_BYTES", default=100 * 1024 * 1024)
BTRO_MAX_DURATION_SECONDS = env.float("BTRO_MAX_DURATION_SECONDS", default=20 * 60)
# Samples × channels once decoded (float32): 20 minutes of stereo at 96 kHz, about 0.9 GB.
BTRO_MAX_DECODED_SAMPLES = env.int("BTRO_MAX_DECODED_SAMPLES", default=20 * 60 * 96_000 * 2)
# Private memory a separation process may use (RLIMIT_DATA); a job past it fails, the
# machine lives. The dsp engine's worst accepted input peaks well below (bench/limits.py).
# 0: by engine (jobs.engines.engine_memory_mb): 3 GB for dsp, 8 GB for demucs, which holds a
# track's whole output (about 3 GB measured for 10 minutes of full-size htdemucs on CPU).
BTRO_SEPARATION_MEMORY_MB = env.int("BTRO_SEPARATION_MEMORY_MB", default=0)
# Input by URL (file_url): the worker fetches it, refusing loopback, private, link-local and
# metadata addresses unless ALLOW_PRIVATE (tests, laptops); the whole fetch has a time limit.
BTRO_FETCH_ALLOW_PRIVATE = env.bool("BTRO_FETCH_ALLOW_PRIVATE", default=False)
BTRO_FETCH_TIME_LIMIT_SECONDS = env.float("BTRO_FETCH_TIME_LIMIT_SECONDS", default=300)

# Jobs
BTRO_RESULT_TTL_SECONDS = env.int("BTRO_RESULT_TTL_SECONDS", default=3600)
# The address clients reach this server at, for links made outside a request (webhook
# events, the OpenAPI document built offline).
BTRO_PUBLIC_URL = env("BTRO_PUBLIC_URL", default="http://localhost:8000").rstrip("/")
BTRO_TEST_JOB_DELAY_SECONDS = env.float("BTRO_TEST_JOB_DELAY_SECONDS", default=2.0)
BTRO_JOB_TIME_LIMIT_SECONDS = env.int("BTRO_JOB_TIME_LIMIT_SECONDS", default=30 * 60)
BTRO_JOB_MAX_ATTEMPTS = env.int("BTRO_JOB_MAX_ATTEMPTS", default=3)
# A running job's claim is a lease: its worker renews it (the heartbeat) every HEARTBEAT s,
# whatever the run is doing; a lease not renewed for STALE s has lapsed (its worker died) and
# the job goes to another worker then. HEARTBEAT must stay well under STALE.
BTRO_HEARTBEAT_SECONDS = env.float("BTRO_HEARTBEAT_SECONDS", default=3.0)
BTRO_STALE_JOB_SECONDS = env.int("BTRO_STALE_JOB_SECONDS", default=10)
# A worker told to stop (SIGTERM, a deploy) lets the job in hand run this long, then kills
# its separation and hands the job back to the queue at once, the attempt not counted.
BTRO_SHUTDOWN_GRACE_SECONDS = env.float("BTRO_SHUTDOWN_GRACE_SECONDS", default=30.0)
# How often a running job's worker checks that the job was not canceled (a read, no write).
BTRO_CANCEL_CHECK_SECONDS = env.float("BTRO_CANCEL_CHECK_SECONDS", default=1.0)
# A queued job no worker has taken for this long may have lost its message: send another.
# (45 s keeps recovery from a broker that lost its messages under a minute; a job waiting
# longer in a long queue gets a duplicate message, which its claim makes harmless.)
BTRO_REQUEUE_SECONDS = env.int("BTRO_REQUEUE_SECONDS", default=45)
BTRO_SWEEP_INTERVAL_SECONDS = env.int("BTRO_SWEEP_INTERVAL_SECONDS", default=5)

# Webhooks: a delivery's timeout, the waits before each retry (the last one repeats) for up
# to BTRO_WEBHOOK_RETRY_FOR_SECONDS, after which an endpoint that failed every delivery is
# disabled; loopback/private/link-local targets only when BTRO_WEBHOOK_ALLOW_PRIVATE=true.
BTRO_WEBHOOK_TIMEOUT_SECONDS = env.float("BTRO_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
BTRO_WEBHOOK_RETRY_SCHEDULE = env.list(
    "BTRO_WEBHOOK_RETRY_SCHEDULE",
    cast=float,
    default=[60, 300, 1800, 7200, 18000, 36000, 43200],
)
BTRO_WEBHOOK_RETRY_FOR_SECONDS = env.float("BTRO_WEBHOOK_RETRY_FOR_SECONDS", default=3 * 86400)
BTRO_WEBHOOK_ALLOW_PRIVATE = env.bool("BTRO_WEBHOOK_ALLOW_PRIVATE", default=False)
# GET /metrics answers a bearer of this token; unset, /metrics is a 404.
BTRO_METRICS_TOKEN = env("BTRO_METRICS_TOKEN", default="")
# A delivery due this long that no worker took (a lost message) is sent again by the sweep.
BTRO_WEBHOOK_RESEND_SECONDS = env.int("BTRO_WEBHOOK_RESEND_SECONDS", default=30)

# Engines: one default, optionally one per tier (e.g. BTRO_ENGINE_BY_TIER=basic=dsp,pro=demucs).
# auto (jobs.engines.engine_choice): demucs for a tier whose checkpoints are in BTRO_MODEL_DIR
# and PyTorch and demucs are installed, dsp otherwise.
BTRO_ENGINE = env("BTRO_ENGINE", default="auto")
BTRO_ENGINE_BY_TIER = env.dict("BTRO_ENGINE_BY_TIER", default={})
BTRO_MODEL_DIR = env("BTRO_MODEL_DIR", default=str(VAR_DIR / "models"))
# A machine that runs no demucs job (a CPU worker on separate.dsp, the web tier) may silence
# the checkpoint checks: SILENCED_SYSTEM_CHECKS=btro.E001,btro.E002.
SILENCED_SYSTEM_CHECKS = env.list("SILENCED_SYSTEM_CHECKS", default=[])
BTRO_DEMUCS = {
    "device": env("BTRO_DEMUCS_DEVICE", default=""),
    "threads": env.int("BTRO_DEMUCS_THREADS", default=0),
    "segment": env.float("BTRO_DEMUCS_SEGMENT", default=0.0) or None,
    "overlap": env.float("BTRO_DEMUCS_OVERLAP", default=0.25),
    "shifts": env.int("BTRO_DEMUCS_SHIFTS", default=0),
    # Segments per call of the model; 0: 1 on a CPU, 8 on a GPU.
    "batch": env.int("BTRO_DEMUCS_BATCH", default=0),
    # Segments in flight at once on a CPU, sharing its threads; 0: 2 (1 on a one-core CPU).
    "streams": env.int("BTRO_DEMUCS_STREAMS", default=0),
    "models": env.dict("BTRO_DEMUCS_MODELS", default={}),
}

# Credits: cost per started minute of audio, by tier; a new account's free allowance.
BTRO_CREDITS_PER_MINUTE = env.dict(
    "BTRO_CREDITS_PER_MINUTE",
    cast={"value": int},
    default={"basic": 1, "vocal_remover": 1, "pro": 2, "studio": 3},
)
BTRO_FREE_CREDITS = env.int("BTRO_FREE_CREDITS", default=100)

# Rate limits, in django-ratelimit's "N/period" form, keyed on the API key.
# 4 per 6 s window: a client polling every 2 s never meets a 429, even with network jitter;
# one polling faster than every 1.5 s always does.
BTRO_RATE_POLL = env("BTRO_RATE_POLL", default="4/6s")
BTRO_RATE_READ = env("BTRO_RATE_READ", default="600/m")
BTRO_RATE_CREATE = env("BTRO_RATE_CREATE", default="60/m")
BTRO_RATE_WRITE = env("BTRO_RATE_WRITE", default="120/m")  # cancel, delete
RATELIMIT_USE_CACHE = "default"

# Broker: embedded (in-process worker) unless BROKER_URL names Redis or RabbitMQ.
BROKER_URL = env("BROKER_URL", default="")
if BROKER_URL.startswith(("redis://", "rediss://")):
    _broker = "dramatiq.brokers.redis.RedisBroker"
elif BROKER_URL.startswith(("amqp://", "amqps://")):
    _broker = "dramatiq.brokers.rabbitmq.RabbitmqBroker"
else:
    _broker = "dramatiq.brokers.stub.StubBroker"
BTRO_EMBEDDED_WORKER = not BROKER_URL
# `manage.py serve` (gunicorn): processes of the web tier and threads in each. Embedded, one
# process always: the in-memory broker's jobs run in the process that queued them.
BTRO_WEB_WORKERS = env.int("WEB_CONCURRENCY", default=2)
BTRO_WEB_THREADS = env.int("WEB_THREADS", default=8)
BTRO_WORKER_THREADS = env.int("BTRO_WORKER_THREADS", default=1)
DRAMATIQ_BROKER = {
    "BROKER": _broker,
    "OPTIONS": {"url": BROKER_URL} if BROKER_URL else {},
    "MIDDLEWARE": [
        "btro.logs.JobLogContext",  # first, so the worker's own lines about a job carry its id
        "dramatiq.middleware.AgeLimit",
        "dramatiq.middleware.TimeLimit",
        "dramatiq.middleware.Callbacks",
        "dramatiq.middleware.Retries",
        "dramatiq.middleware.ShutdownNotifications",
        "jobs.middleware.GracefulShutdown",
        "jobs.middleware.PrefetchPerThread",
        "django_dramatiq.middleware.DbConnectionsMiddleware",
    ],
}
DRAMATIQ_AUTODISCOVER_MODULES = ["tasks"]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.JSONParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # `?format=` is no renderer switch here: /v1 speaks JSON only.
    "URL_FORMAT_OVERRIDE": None,
    "EXCEPTION_HANDLER": "btro.errors.handlers.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "PREPROCESSING_HOOKS": ["jobs.urls.drop_slashed_twins"],
    "TITLE": "BTRO API",
    "DESCRIPTION": "Audio source separation: post a song, poll the job, download its stems.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # A job's `type` and an event's `type` are two choice sets: each its own name.
    "ENUM_NAME_OVERRIDES": {
        "EventTypeEnum": "webhooks.services.EVENT_TYPES",
        "JobTypeEnum": "jobs.models.JOB_TYPES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "btro.errors.openapi.openapi_error_responses",
        "btro.openapi.openapi_servers_and_files",
    ],
}

# Every record carries time, level, logger and its request or job id (btro/logs.py);
# LOG_FORMAT=json writes one JSON object a line, for log shippers.
LOG_FORMAT = env("LOG_FORMAT", default="text")
LOG_LEVEL = env("LOG_LEVEL", default="INFO").upper()
if LOG_FORMAT not in ("text", "json"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"LOG_FORMAT is text or json, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "btro.logs.ContextFilter"}},
    "formatters": {
        "text": {"()": "btro.logs.TextFormatter"},
        "json": {"()": "btro.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["context"],
            "formatter": LOG_FORMAT,
            "level": LOG_LEVEL,
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Under DEBUG, Django's own console handler would print its records again, bare.
        "django": {"handlers": [], "level": LOG_LEVEL},
        "django.server": {"level": "WARNING"},
        # RabbitMQ's client says INFO about each connection it opens: a dozen lines a job.
        "pika": {"level": "WARNING"},
    },
}

# Errors to Sentry when SENTRY_DSN is set: pip install -r requirements-sentry.txt
SENTRY_DSN = env("SENTRY_DSN", default="")
if SENTRY_DSN:
    try:
        import sentry_sdk
    except ImportError as exc:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            "SENTRY_DSN is set but sentry-sdk is not installed: "
            "pip install -r requirements-sentry.txt"
        ) from exc
    # Its Django integration listens to got_request_exception; ERROR log records become events.
    sentry_sdk.init(dsn=SENTRY_DSN)

if env.bool("BTRO_SECURE", default=False) and SECRET_KEY.startswith("insecure-dev-key"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("BTRO_SECURE=true needs a SECRET_KEY of your own.")
if not DEBUG and env.bool("BTRO_SECURE", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
CSRF_FAILURE_VIEW = "btro.errors.handlers.csrf_failure"

# Content-Security-Policy (django-csp): pages load only the site's own files, with no inline
# script or style; JSON answers get a policy that loads nothing (dashboard/middleware.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
if AWS_STORAGE_BUCKET_NAME:
    # The job page's players and waveforms follow a stem's redirect to the bucket.
    from urllib.parse import urlsplit

    _bucket = urlsplit(AWS_S3_ENDPOINT_URL or "https://*.amazonaws.com")
    _bucket_origin = f"{_bucket.scheme}://{_bucket.netloc}"
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["media-src"] = ["'self'", _bucket_origin]
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["connect-src"] = ["'self'", _bucket_origin]
