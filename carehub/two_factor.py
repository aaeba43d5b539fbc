"""The second factor for staff (domain.md 8): an authenticator app (TOTP) and recovery codes.

django-otp keeps the devices: one TOTP device per person (an authenticator app) and one static
device holding single-use recovery codes. Signing in asks for the password and a code; a person
who has no authenticator yet signs in with the password only into the enrolment page and nowhere
else (SecondFactorRequiredMiddleware), scans the QR code, confirms one code and receives the
recovery codes, shown once.
"""

from __future__ import annotations

import base64
import time

import segno
from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.db import transaction
from django_otp.oath import TOTP, hotp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from carehub.errors import DomainError, NotAllowed
from carehub.history import save_with_history

AUTHENTICATOR = "Authenticator app"
RECOVERY = "Recovery codes"
RECOVERY_CODE_COUNT = 10


def authenticator(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def has_second_factor(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def _normalized(code: str) -> str:
    return "".join((code or "").split()).lower()


def verify_code(user, code: str):
    """The device that accepts `code` (a six-digit app code or a recovery code), or None.

    The code's shape picks the device, so a wrong app code never counts as a failed attempt
    against the recovery codes (django-otp throttles each device after failures).
    """
    code = _normalized(code)
    if not code:
        return None
    if code.isdigit() and len(code) == 6:
        candidates = TOTPDevice.objects.filter(user=user, confirmed=True)
    else:
        candidates = StaticDevice.objects.filter(user=user, confirmed=True)
    for device in candidates:
        allowed, _ = device.verify_is_allowed()
        if not allowed:
            raise DomainError("Too many wrong codes: wait a minute before trying again")
        if device.verify_token(code):
            return device
    return None


@transaction.atomic
def start_enrolment(user) -> TOTPDevice:
    """The unconfirmed authenticator the enrolment page shows as a QR code (one per person)."""
    if has_second_factor(user):
        raise DomainError("You already have an authenticator app; an administrator can reset it")
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name=AUTHENTICATOR, confirmed=False)


@transaction.atomic
def confirm_enrolment(user, code: str) -> tuple[TOTPDevice, list[str]]:
    """Confirm the authenticator with one of its codes; returns it and fresh recovery codes."""
    device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).first()
    if device is None:
        raise DomainError("Start again: open the enrolment page to get a new QR code")
    if not device.verify_token(_normalized(code)):
        raise DomainError("That code does not match: check the time on your phone and retry")
    device.confirmed = True
    device.save()
    save_with_history(user, actor=user, reason="Enrolled an authenticator app (second factor)")
    return device, issue_recovery_codes(user, actor=user)


@transaction.atomic
def issue_recovery_codes(user, *, actor) -> list[str]:
    """New single-use recovery codes; the earlier ones stop working."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    for code in codes:
        device.token_set.create(token=code)
    save_with_history(user, actor=actor, reason="New recovery codes issued")
    return codes


@transaction.atomic
def reset_second_factor(user, *, actor, reason: str) -> None:
    """A lost phone: remove the person's authenticator and recovery codes and end their sessions;
    at their next sign-in they enrol a new app. Only someone who may manage the user does it,
    and not for themself (their recovery codes are for that)."""
    from carehub.services import check_may_manage_user
    from carehub.sessions import end_sessions

    reason = (reason or "").strip()
    if not reason:
        raise DomainError("Say why the second factor is reset (e.g. 'phone lost, ticket 4711')")
    if actor.pk == user.pk:
        raise NotAllowed("Use one of your recovery codes, or ask another administrator")
    check_may_manage_user(actor, user)
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    end_sessions(user)
    save_with_history(user, actor=actor, reason=f"Second factor reset: {reason}")


def enrol_demo_authenticator(user) -> TOTPDevice:
    """A confirmed authenticator for a demo user (seed_demo, demo_otp: DEBUG only), whose codes
    `manage.py demo_otp USER` prints, so the demo stays `make run` and a sign-in."""
    device = authenticator(user)
    return device or TOTPDevice.objects.create(user=user, name=AUTHENTICATOR, confirmed=True)


def seconds_left(device: TOTPDevice) -> int:
    return device.step - int(time.time() - device.t0) % device.step


def secret_key(device: TOTPDevice) -> str:
    """The key in the base32 form authenticator apps take, in groups of four."""
    secret = base64.b32encode(device.bin_key).decode()
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def current_step(device: TOTPDevice) -> int:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return totp.t()


def current_code(device: TOTPDevice, *, after_step: int | None = None) -> str:
    """The code the device's app shows now, or the next step's code when `after_step` (its last
    accepted step) is the current one: the device's tolerance accepts one step ahead."""
    step = current_step(device)
    if after_step is not None and step <= after_step:
        step = after_step + 1
    return f"{hotp(device.bin_key, step, device.digits):0{device.digits}d}"


def qr_code_svg(device: TOTPDevice) -> str:
    """The device's otpauth:// URL as an SVG element for the page (white behind it, so dark
    mode does not hide it from the phone's camera)."""
    return segno.make(device.config_url, error="m").svg_inline(scale=5, light="#fff")


class SecondFactorLoginForm(AdminAuthenticationForm):
    """Username, password and the code; the code may be left empty only before enrolment."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["code"] = forms.CharField(
            required=False,
            max_length=32,
            label="Code",
            help_text="From your authenticator app, or one of your recovery codes.",
            widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        )

    def clean(self):
        cleaned = super().clean()
        user = self.get_user()
        if user is None or not has_second_factor(user):
            return cleaned  # no authenticator yet: the enrolment page is all they reach
        code = cleaned.get("code", "")
        if not _normalized(code):
            raise self._code_error("Enter the code from your authenticator app")
        try:
            device = verify_code(user, code)
        except DomainError as error:
            raise self._code_error(str(error)) from None
        if device is None:
            raise self._code_error("That code is not valid (codes change every 30 seconds)")
        # django-otp's user_logged_in receiver marks the session verified by this device.
        user.otp_device = device
        return cleaned

    def _code_error(self, message: str) -> ValidationError:
        return ValidationError(message, code="invalid_code")
