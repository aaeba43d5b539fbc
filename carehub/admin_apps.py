"""Django's admin app, with CareHub's site (a second factor at sign-in) as `admin.site`.

Its own module: an AppConfig imported into carehub/apps.py would count as that app's config.
"""

from django.contrib.admin.apps import AdminConfig


class CareHubAdminConfig(AdminConfig):
    default_site = "carehub.admin_site.CareHubAdminSite"
