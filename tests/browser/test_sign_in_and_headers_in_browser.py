"""Signing in with a second factor, and the admin working under the Content-Security-Policy,
in chromium."""

import re
from pathlib import Path

import pytest
from django_otp.oath import hotp

from tests.conftest import PASSWORD
from tests.gaps.factories import CareGapFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
SCREENSHOTS = Path("/tmp/carehub-screenshots")


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def code_from_secret(secret: str) -> str:
    """What an authenticator app computes from the key the page shows (RFC 6238, 30 s steps)."""
    import base64
    import time

    key = base64.b32decode(secret.replace(" ", ""))
    return f"{hotp(key, int(time.time()) // 30, 6):06d}"


def test_a_newcomer_enrols_an_authenticator_and_gets_recovery_codes(new_page, agent_a):
    page = new_page()
    page.goto("/admin/login/?next=/admin/")
    shoot(page, "login")
    page.fill("#id_username", agent_a.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/two-factor/")
    assert page.locator(".two-factor-qr svg").count() == 1
    shoot(page, "two-factor-enrol")
    secret = page.locator("#totp-secret").inner_text()

    page.fill("#id_code", code_from_secret(secret))
    page.click("input[type=submit]")

    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10
    shoot(page, "recovery-codes")
    page.click("text=Continue to CareHub")
    page.wait_for_url("**/admin/")
    assert agent_a.username.upper() in page.locator("#user-tools").inner_text().upper()


def test_a_wrong_code_keeps_the_door_shut(new_page, agent_a):
    from tests.conftest import enrolled_authenticator

    enrolled_authenticator(agent_a)
    page = new_page()
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", agent_a.username)
    page.fill("#id_password", PASSWORD)
    page.fill("#id_code", "000000")
    page.click("input[type=submit]")
    assert "not valid" in page.locator(".errornote").inner_text()
    shoot(page, "login-wrong-code")
    assert page.goto("/admin/patients/patient/").url.endswith(
        "/admin/login/?next=/admin/patients/patient/"
    )


def test_admin_pages_run_without_a_policy_violation(signed_in, administrator_a, agent_a, patient_a):
    gap = CareGapFactory(patient=patient_a)
    page = signed_in(administrator_a)
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text)
            if re.search("Content.Security.Policy", message.text, re.I)
            else None
        ),
    )
    for url in (
        "/admin/",
        "/admin/carehub/user/",
        f"/admin/carehub/user/{agent_a.pk}/change/",
        "/admin/carehub/user/add/",
        "/admin/patients/patient/",
        f"/admin/patients/patient/{patient_a.pk}/change/",
        "/admin/gaps/caregap/",
        f"/admin/gaps/caregap/{gap.pk}/change/",
        "/admin/two-factor/",
    ):
        response = page.goto(url)
        assert response.status == 200, url
        if url.startswith("/admin/carehub/user/") and url.endswith("/change/"):
            shoot(page, "user-change")
        assert "script-src 'self'" in response.headers["content-security-policy"]
    # The admin's own scripts run: the sidebar toggle (nav_sidebar.js) folds the sidebar away.
    page.goto("/admin/carehub/user/")
    main = page.locator("#main")
    shifted = "shifted" in (main.get_attribute("class") or "")
    page.click("#toggle-nav-sidebar")
    assert ("shifted" in (main.get_attribute("class") or "")) != shifted
    assert violations == []


def test_a_user_shared_with_another_client_is_read_only_for_an_administrator(
    signed_in, persona, org_a, org_b
):
    administrator_b = persona("administrator", org_b)
    shared = persona("agent", org_a, org_b)
    page = signed_in(administrator_b)
    response = page.goto(f"/admin/carehub/user/{shared.pk}/change/")
    assert response.status == 200
    shoot(page, "user-read-only")
    assert page.locator("input[type=submit][name=_save]").count() == 0
    assert page.get_by_text("Reset password").count() == 0
    assert "1 you do not administer" in page.locator("#content").inner_text()
    assert page.goto(f"/admin/carehub/user/{shared.pk}/password/").status == 403
