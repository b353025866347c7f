"""Placeholder: the API work replaces this with the contract's error shape."""

from rest_framework.views import exception_handler  # noqa: F401
