"""The keys page: Test and Live side by side; create, roll and revoke."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.models import ApiKey
from accounts.selectors import api_key_get, api_key_list_current
from accounts.services import api_key_create, api_key_revoke, api_key_roll

from ..forms import MODE_CHOICES, ROLL_CHOICES, KeyCreateForm, KeyRollForm
from ..reveal import reveal_later, take_revealed
from . import AuthenticatedHttpRequest


def _key_or_404(request: AuthenticatedHttpRequest, key_id: int) -> ApiKey:
    key = api_key_get(user=request.user, key_id=key_id)
    if key is None:
        raise Http404("No such key.")
    return key


@login_required
def keys(request: AuthenticatedHttpRequest) -> HttpResponse:
    current = list(api_key_list_current(user=request.user))
    columns = [
        {
            "mode": mode,
            "label": label,
            "keys": [key for key in current if key.mode == mode],
            "create_form": KeyCreateForm(initial={"mode": mode}),
        }
        for mode, label in MODE_CHOICES
    ]
    context = {
        "columns": columns,
        "revealed": take_revealed(request),
        "roll_form": KeyRollForm(),
    }
    return render(request, "dashboard/keys.html", context)


@login_required
@require_POST
def key_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = KeyCreateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose test or live, and a name of at most 100 characters.")
        return redirect("dashboard:keys")
    mode = form.cleaned_data["mode"]
    name = form.cleaned_data["name"] or f"{mode.capitalize()} key"
    key, secret = api_key_create(user=request.user, mode=mode, name=name)
    reveal_later(request, key=key, secret=secret)
    messages.success(request, f"Created “{key.name}”. Copy the secret now: it is shown once.")
    return redirect("dashboard:keys")


@login_required
@require_POST
def key_roll(request: AuthenticatedHttpRequest, key_id: int) -> HttpResponse:
    key = _key_or_404(request, key_id)
    form = KeyRollForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose when the old key should stop working.")
        return redirect("dashboard:keys")
    expire_in = form.cleaned_data["expire_in"]
    new_key, secret = api_key_roll(key=key, expire_in=expire_in)
    reveal_later(request, key=new_key, secret=secret)
    when = dict(ROLL_CHOICES)[expire_in].lower()
    messages.success(request, f"Rolled “{key.name}”. The old secret stops working {when}.")
    return redirect("dashboard:keys")


@login_required
def key_revoke(request: AuthenticatedHttpRequest, key_id: int) -> HttpResponse:
    """GET asks for confirmation; POST revokes."""
    key = _key_or_404(request, key_id)
    if request.method == "POST":
        api_key_revoke(key=key)
        messages.success(request, f"Revoked “{key.name}” ({key.mask}). It no longer works.")
        return redirect("dashboard:keys")
    return render(request, "dashboard/key_revoke.html", {"key": key})
