"""The admin site: signing in takes a second factor, and only a verified session gets in.

The site is Django's default (`admin.site`, through CareHubAdminConfig), so every app registers
with it as usual.
"""

from django import forms
from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django_otp import login as otp_login

from carehub import two_factor
from carehub.errors import DomainError


class EnrolForm(forms.Form):
    code = forms.CharField(
        max_length=12,
        label="Code",
        help_text="The six digits your authenticator app shows for CareHub.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class CareHubAdminSite(admin.AdminSite):
    site_header = "CareHub"
    site_title = "CareHub"
    index_title = "Care-gap back office"
    login_form = two_factor.SecondFactorLoginForm
    login_template = "admin/carehub/login.html"

    def has_permission(self, request) -> bool:
        # A password alone (no authenticator yet, or a session from before enrolment) is not
        # enough for any admin page; is_verified comes from django-otp's middleware.
        return super().has_permission(request) and request.user.is_verified()

    def get_urls(self):
        return [
            path("two-factor/", self.two_factor_view, name="two_factor"),
            *super().get_urls(),
        ]

    @method_decorator(never_cache)
    @method_decorator(csrf_protect)
    def two_factor_view(self, request):
        """Enrolment (unverified users) and new recovery codes (verified users)."""
        user = request.user
        if not user.is_authenticated or not user.is_active or not user.is_staff:
            login = reverse("admin:login", current_app=self.name)
            return redirect(f"{login}?{REDIRECT_FIELD_NAME}={request.path}")
        context = {
            **self.each_context(request),
            "title": "Second factor",
            # Before the second factor, no menu: the enrolment page is all there is.
            "is_nav_sidebar_enabled": user.is_verified(),
        }
        if user.is_verified():
            if request.method == "POST" and "new_recovery_codes" in request.POST:
                codes = two_factor.issue_recovery_codes(user, actor=user)
                return self._recovery_codes(request, context, codes)
            return TemplateResponse(request, "admin/carehub/two_factor_status.html", context)
        form = EnrolForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                device, codes = two_factor.confirm_enrolment(user, form.cleaned_data["code"])
            except DomainError as error:
                form.add_error("code", str(error))
            else:
                otp_login(request, device)
                return self._recovery_codes(request, context, codes)
        try:
            device = two_factor.start_enrolment(user)
        except DomainError as error:  # enrolled, but this session did not give a code
            context["problem"] = str(error)
            return TemplateResponse(request, "admin/carehub/two_factor_status.html", context)
        context.update(
            form=form,
            submit_label="Confirm",
            qr_code=mark_safe(two_factor.qr_code_svg(device)),  # noqa: S308 (segno's own SVG)
            secret=two_factor.secret_key(device),
        )
        return TemplateResponse(request, "admin/carehub/two_factor_enrol.html", context)

    def _recovery_codes(self, request, context, codes):
        context.update(codes=codes)
        return TemplateResponse(request, "admin/carehub/recovery_codes.html", context)
