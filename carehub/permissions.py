from rest_framework import permissions


class ModelPermissions(permissions.DjangoModelPermissions):
    """DRF's model permissions, with reads requiring the role's `view` permission too."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }
