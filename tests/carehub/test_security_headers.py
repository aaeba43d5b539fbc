"""Content-Security-Policy and Permissions-Policy on every response, in production settings too."""

import json
import subprocess
import sys

import pytest
from django.urls import reverse

from tests.carehub.test_security import REPO, production_environment

pytestmark = pytest.mark.django_db


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in policy.split(";") if part.strip())
    }


def check_headers(response) -> None:
    policy = directives(response)
    assert policy["script-src"] == ["'self'"]  # no inline script, no eval, no other host
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    permissions = response["Permissions-Policy"]
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in permissions


def test_pages_and_api_carry_both_headers_with_debug_off(settings, client, agent_a, patient_a):
    settings.DEBUG = False
    check_headers(client.get(reverse("admin:login")))
    client.force_login(agent_a)
    check_headers(client.get(reverse("admin:patients_patient_change", args=[patient_a.pk])))
    check_headers(client.get("/api/patients/"))
    check_headers(client.get("/preferences/not-a-token/"))  # the patient's page, no login


PRINT_HEADERS = """
import json, django
django.setup()
from django.test import Client
response = Client().get("/admin/login/", secure=True, HTTP_HOST="carehub.example.org")
print(json.dumps({"status": response.status_code, **dict(response.headers)}))
"""


def test_production_settings_send_both_headers():
    result = subprocess.run(
        [sys.executable, "-c", PRINT_HEADERS],
        cwd=REPO,
        env=production_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    headers = json.loads(result.stdout.strip().splitlines()[-1])
    assert headers["status"] == 200
    assert "script-src 'self';" in headers["Content-Security-Policy"] + ";"
    assert "camera=()" in headers["Permissions-Policy"]
    assert "max-age=31536000" in headers["Strict-Transport-Security"]
