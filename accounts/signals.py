"""Receivers of the accounts app."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver
from django.utils import timezone

from accounts.models import User


@receiver(user_logged_out)
def record_sign_out(sender: Any, user: Any, **kwargs: Any) -> None:
    if user is not None and user.pk is not None:
        User.objects.filter(pk=user.pk).update(signed_out_at=timezone.now())
