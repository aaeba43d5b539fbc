from django.conf import settings
from django.contrib.auth import logout
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve
from django.utils.cache import add_never_cache_headers

from carehub.sessions import session_expired


class NoStoreForAuthenticatedMiddleware:
    """Pages shown to a signed-in user may hold PHI: no browser or proxy may keep a copy."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)  # no-cache, no-store, must-revalidate, private
        return response


class SessionLifetimeMiddleware:
    """Signs out a session 12 hours after sign-in, however active (carehub.sessions)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and session_expired(request.session):
            logout(request)
        return self.get_response(request)


class SecondFactorRequiredMiddleware:
    """A session signed in by password alone reaches the enrolment page and nothing else.

    Such a session exists only for a person with no authenticator yet (the login form demands
    the code from everyone else). The API answers 403; pages redirect to the enrolment page.
    """

    OPEN_URL_NAMES = frozenset({"admin:two_factor", "admin:logout", "admin:login", "admin:jsi18n"})

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or user.is_verified():
            return self.get_response(request)
        if request.path.startswith("/" + settings.STATIC_URL.lstrip("/")):
            return self.get_response(request)
        match = _resolve(request.path_info)
        if match is not None and match.view_name in self.OPEN_URL_NAMES:
            return self.get_response(request)
        if request.path_info.startswith("/api/"):
            return JsonResponse(
                {"detail": "Sign in with your second factor first (/admin/two-factor/)."},
                status=403,
            )
        return redirect("admin:two_factor")


def _resolve(path: str):
    try:
        return resolve(path)
    except Resolver404:
        return None


class PermissionsPolicyMiddleware:
    """Sends settings.PERMISSIONS_POLICY (camera, microphone, geolocation … all off).

    One constant header: a dependency would be more code than this.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = settings.PERMISSIONS_POLICY

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", self.policy)
        return response
