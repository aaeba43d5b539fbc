"""HIPAA technical safeguards that settings and middleware carry."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import RequestFactory
from django.urls import reverse

from carehub.logging import PhiSafeExceptionReporterFilter

REPO = Path(__file__).resolve().parents[2]


def test_sessions_end_after_fifteen_idle_minutes():
    assert settings.SESSION_COOKIE_AGE == 15 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST  # each request restarts the idle clock


@pytest.mark.django_db
def test_an_idle_session_is_logged_out(client, agent_a):
    client.force_login(agent_a)
    assert client.get(reverse("admin:index")).status_code == 200
    session = client.session
    session.set_expiry(-1)  # what 15 idle minutes leave behind: an expired session
    session.save()
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


@pytest.mark.parametrize("weak", ["short1!", "password1234", "123456789012", "carehubagent"])
def test_weak_passwords_are_refused(weak, django_user_model):
    user = django_user_model(username="carehubagent")
    with pytest.raises(ValidationError):
        validate_password(weak, user)


def test_a_strong_password_is_accepted(django_user_model):
    validate_password("correct-horse-battery-staple-7", django_user_model(username="x"))


@pytest.mark.django_db
def test_logins_are_throttled_after_five_failures(settings, client, agent_a):
    from tests.conftest import PASSWORD

    settings.AXES_ENABLED = True
    for _ in range(5):
        client.post(
            reverse("admin:login"),
            {"username": agent_a.username, "password": "wrong"},
            REMOTE_ADDR="10.0.0.9",
        )
    response = client.post(
        reverse("admin:login"),
        {"username": agent_a.username, "password": PASSWORD},
        REMOTE_ADDR="10.0.0.9",
    )
    assert response.status_code == 429  # locked even with the right password
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_pages_for_signed_in_users_are_never_cached(client, agent_a, patient_a):
    client.force_login(agent_a)
    response = client.get(reverse("admin:patients_patient_change", args=[patient_a.pk]))
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]


@pytest.mark.django_db
def test_patient_str_carries_no_name(patient_a):
    assert patient_a.family_name not in str(patient_a)
    assert patient_a.mrn not in str(patient_a)
    assert str(patient_a) == f"Patient #{patient_a.pk}"


def test_error_reports_hide_request_bodies_and_local_variables():
    request = RequestFactory().post("/admin/", {"family_name": "Alvarez", "mrn": "MRN1"})
    reporter = PhiSafeExceptionReporterFilter()
    assert "Alvarez" not in str(reporter.get_post_parameters(request))
    frames = reporter.get_traceback_frame_variables(request, None)
    assert "Alvarez" not in str(frames)


def production_environment() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DATABASE_URL"}}
    env.update(
        DEBUG="false",
        SECRET_KEY="a-real-production-secret-" + "x" * 40,
        ALLOWED_HOSTS="carehub.example.org",
        DJANGO_SETTINGS_MODULE="carehub.settings",
    )
    return env


def test_deploy_check_is_clean_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "INFO"],
        cwd=REPO,
        env=production_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_refuse_to_start_without_a_secret_key():
    env = production_environment()
    env.pop("SECRET_KEY")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_a_malformed_setting_fails_loudly():
    env = production_environment()
    env["AXES_FAILURE_LIMIT"] = "five"
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "AXES_FAILURE_LIMIT='five' is not an integer" in result.stderr
