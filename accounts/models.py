from __future__ import annotations

from datetime import datetime

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        return self.create_user(email, password, is_staff=True, **extra)


class User(AbstractBaseUser):
    email = models.EmailField(unique=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()
    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"

    def __str__(self) -> str:
        return self.email


class ApiKey(models.Model):
    """A secret key; only its SHA-256 digest and a display mask are stored."""

    MODES = [("test", "Test"), ("live", "Live")]

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    mode = models.CharField(max_length=4, choices=MODES)
    name = models.CharField(max_length=100, blank=True)
    digest = models.CharField(max_length=64, unique=True)
    mask = models.CharField(max_length=20)
    created = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Not a field: the cache generation this instance was read under (accounts/selectors.py).
    cache_generation: str | None = None

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.mask} ({self.mode})"

    @property
    def livemode(self) -> bool:
        return self.mode == "live"

    def is_usable(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at


class CreditEntry(models.Model):
    """The credit ledger: the balance is the sum of the amounts."""

    # A job has at most one of each: its cost at upload, one adjustment once its audio is
    # decoded (the difference, either way), and one refund of the two if it fails.
    KINDS = [
        ("grant", "Grant"),
        ("cost", "Job cost"),
        ("adjustment", "Job cost adjustment"),
        ("refund", "Refund"),
    ]

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="credit_entries")
    kind = models.CharField(max_length=10, choices=KINDS)
    amount = models.IntegerField()
    job_id = models.CharField(max_length=64, blank=True, default="")
    note = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            # Charged once, adjusted once, refunded once, whatever retries happen.
            models.UniqueConstraint(
                fields=["job_id", "kind"],
                condition=~models.Q(job_id=""),
                name="one_entry_per_job_and_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount:+d}"
