from django.contrib.admin.apps import AdminConfig


class EnvelopeAdminConfig(AdminConfig):
    """django.contrib.admin with our site (config.admin_site) as admin.site."""

    default_site = "config.admin_site.EnvelopeAdminSite"
