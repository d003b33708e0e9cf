"""Forms parse and validate input; the views hand the cleaned values to services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from accounts.models import ApiKey, User
from accounts.services import ROLL_GRACE
from jobs.models import Job
from jobs.separation import TIERS
from jobs.separation.audio import FORMATS
from jobs.services.metadata import METADATA_MAX_KEY_LENGTH, METADATA_MAX_VALUE_LENGTH
from webhooks.services import EVENT_TYPES

LOGIN_FAILED = "Wrong email or password."
MODE_CHOICES = ApiKey.MODES
TIER_CHOICES = [(tier, tier) for tier in TIERS]
_ROLL_LABELS = {"now": "Now", "1h": "In 1 hour", "24h": "In 24 hours", "7d": "In 7 days"}
ROLL_CHOICES = [(value, _ROLL_LABELS.get(value, value)) for value in ROLL_GRACE]


class SignupForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters; a passphrase is best.",
    )

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("email") and cleaned.get("password"):
            try:
                password_validation.validate_password(
                    cleaned["password"], User(email=cleaned["email"])
                )
            except forms.ValidationError as err:
                self.add_error("password", err)
        return cleaned


class LoginForm(AuthenticationForm):
    """Django's login form, with one message for every failure so no email is confirmed."""

    error_messages = {"invalid_login": LOGIN_FAILED, "inactive": LOGIN_FAILED}

    def clean_username(self) -> str:
        return (self.cleaned_data.get("username") or "").strip().lower()


class KeyCreateForm(forms.Form):
    mode = forms.ChoiceField(choices=MODE_CHOICES)
    name = forms.CharField(max_length=100, required=False)


class KeyRollForm(forms.Form):
    expire_in = forms.ChoiceField(choices=ROLL_CHOICES, initial="24h")


class JobFilterForm(forms.Form):
    mode = forms.ChoiceField(choices=[("", "All modes"), *MODE_CHOICES], required=False)
    status = forms.ChoiceField(choices=[("", "Any status"), *Job.Status.choices], required=False)
    tier = forms.ChoiceField(choices=[("", "Any tier"), *TIER_CHOICES], required=False)
    key = forms.CharField(
        max_length=METADATA_MAX_KEY_LENGTH,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "Metadata key", "aria-label": "Metadata key"}),
    )
    value = forms.CharField(
        max_length=METADATA_MAX_VALUE_LENGTH,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "Value", "aria-label": "Metadata value"}),
    )

    def metadata(self) -> tuple[str | None, str | None]:
        """job_search's metadata key and value: a key alone matches any value."""
        key, value = self.cleaned_data.get("key"), self.cleaned_data.get("value")
        return key or None, (value or None) if key else None

    def livemode(self) -> bool | None:
        mode = self.cleaned_data.get("mode")
        return None if not mode else mode == "live"


class TryItForm(forms.Form):
    file = forms.FileField(
        widget=forms.ClearableFileInput(attrs={"accept": "audio/*,.wav,.flac,.mp3,.ogg,.m4a"})
    )
    mode = forms.ChoiceField(choices=MODE_CHOICES, initial="test", widget=forms.RadioSelect)
    tier = forms.ChoiceField(choices=TIER_CHOICES, initial="pro")
    format = forms.ChoiceField(choices=[(f, f) for f in FORMATS], initial="wav")


class UsageForm(forms.Form):
    mode = forms.ChoiceField(choices=MODE_CHOICES, required=False)


class ModeForm(forms.Form):
    mode = forms.ChoiceField(choices=MODE_CHOICES, required=False)


class EndpointForm(forms.Form):
    mode = forms.ChoiceField(choices=MODE_CHOICES)
    url = forms.CharField(max_length=2048)
    description = forms.CharField(max_length=500, required=False)
    enabled_events = forms.MultipleChoiceField(
        choices=[(event, event) for event in EVENT_TYPES], widget=forms.CheckboxSelectMultiple
    )
