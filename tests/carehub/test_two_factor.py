"""Staff sign in with a second factor (domain.md 8): the password and an authenticator code (or a
single-use recovery code). Someone with no authenticator yet reaches only the enrolment page."""

import datetime as dt

import pytest
import time_machine
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from carehub.two_factor import current_code
from tests.conftest import PASSWORD, enrolled_authenticator

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)  # a frozen clock, so codes are known


def sign_in(client, user, code=""):
    return client.post(
        reverse("admin:login"),
        {"username": user.username, "password": PASSWORD, "code": code, "next": "/admin/"},
    )


def signed_in_user_id(client):
    return client.session.get("_auth_user_id")


@time_machine.travel(NOW, tick=False)
def test_the_password_alone_is_refused_once_an_authenticator_is_enrolled(client, agent_a):
    enrolled_authenticator(agent_a)
    response = sign_in(client, agent_a)
    assert response.status_code == 200
    assert "Enter the code from your authenticator app" in response.content.decode()
    assert signed_in_user_id(client) is None


@time_machine.travel(NOW, tick=False)
def test_the_right_code_signs_in_and_opens_the_admin(client, agent_a):
    device = enrolled_authenticator(agent_a)
    response = sign_in(client, agent_a, current_code(device))
    assert response.status_code == 302
    assert signed_in_user_id(client) == str(agent_a.pk)
    assert client.get(reverse("admin:index")).status_code == 200


@time_machine.travel(NOW, tick=False)
def test_a_wrong_or_reused_code_is_refused(client, agent_a):
    device = enrolled_authenticator(agent_a)
    code = current_code(device)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert "not valid" in sign_in(client, agent_a, wrong).content.decode()
    assert signed_in_user_id(client) is None
    with time_machine.travel(NOW + dt.timedelta(seconds=90), tick=False):  # past the throttle
        assert sign_in(client, agent_a, current_code(device)).status_code == 302
    client.logout()
    device.refresh_from_db()
    with time_machine.travel(NOW + dt.timedelta(seconds=90), tick=False):
        # The same code again (someone who saw it over a shoulder): refused.
        replay = f"{current_code(device)}"
        assert sign_in(client, agent_a, replay).status_code == 200
    assert signed_in_user_id(client) is None


@time_machine.travel(NOW, tick=False)
def test_a_recovery_code_signs_in_once(client, agent_a):
    enrolled_authenticator(agent_a)
    from carehub.two_factor import issue_recovery_codes

    codes = issue_recovery_codes(agent_a, actor=agent_a)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert sign_in(client, agent_a, codes[0]).status_code == 302
    client.logout()
    assert sign_in(client, agent_a, codes[0]).status_code == 200  # used up
    assert StaticToken.objects.filter(device__user=agent_a).count() == 9


def test_someone_without_an_authenticator_reaches_only_the_enrolment_page(client, agent_a):
    response = sign_in(client, agent_a)
    assert response.status_code == 302
    assert signed_in_user_id(client) == str(agent_a.pk)  # signed in, but not verified
    for url in (reverse("admin:index"), reverse("admin:patients_patient_changelist")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == reverse("admin:two_factor")
    api = client.get("/api/patients/")
    assert api.status_code == 403
    assert "second factor" in api.json()["detail"]


def test_enrolment_confirms_the_app_and_shows_recovery_codes_once(client, agent_a):
    sign_in(client, agent_a)
    page = client.get(reverse("admin:two_factor"))
    assert page.status_code == 200
    assert b'two-factor-qr"><svg' in page.content and b"totp-secret" in page.content
    device = TOTPDevice.objects.get(user=agent_a)
    assert not device.confirmed
    refused = client.post(reverse("admin:two_factor"), {"code": "000000"})
    assert "does not match" in refused.content.decode()

    done = client.post(reverse("admin:two_factor"), {"code": current_code(device)})

    assert done.status_code == 200
    codes = done.context["codes"]
    assert len(codes) == 10
    assert all(code.encode() in done.content for code in codes)
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(reverse("admin:index")).status_code == 200
    record = agent_a.history.latest()
    assert record.history_change_reason == "New recovery codes issued"
    # Once enrolled, the page offers new recovery codes, never a second QR code.
    again = client.get(reverse("admin:two_factor"))
    assert b"two-factor-qr" not in again.content
    assert b"Make new recovery codes" in again.content


def test_an_enrolled_user_cannot_enrol_again_with_the_password_alone(client, agent_a):
    enrolled_authenticator(agent_a)
    client.post(reverse("admin:login"), {"username": agent_a.username, "password": PASSWORD})
    assert signed_in_user_id(client) is None
    assert client.get(reverse("admin:two_factor")).status_code == 302  # to the login page
    assert TOTPDevice.objects.filter(user=agent_a).count() == 1


def test_the_login_page_asks_for_the_code(client):
    page = client.get(reverse("admin:login"))
    assert b'name="code"' in page.content
    assert b'autocomplete="one-time-code"' in page.content


def test_demo_otp_prints_a_demo_users_code_only_in_development(settings, system_user):
    import io

    from django.contrib.auth import get_user_model
    from django.core.management import CommandError, call_command

    from carehub.two_factor import verify_code

    settings.DEBUG = True
    demo = get_user_model().objects.create_user("agent", password=PASSWORD, is_staff=True)
    out = io.StringIO()
    call_command("demo_otp", "agent", stdout=out, stderr=io.StringIO())
    assert verify_code(demo, out.getvalue().strip()) is not None
    with pytest.raises(CommandError, match="not a demo user"):
        call_command("demo_otp", "nina", stdout=io.StringIO())
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG off"):
        call_command("demo_otp", "agent", stdout=io.StringIO())


def test_a_signed_in_user_finds_the_second_factor_page_and_renews_recovery_codes(client, agent_a):
    client.force_login(agent_a)
    index = client.get(reverse("admin:index"))
    assert reverse("admin:two_factor").encode() in index.content
    renewed = client.post(reverse("admin:two_factor"), {"new_recovery_codes": "1"})
    codes = renewed.context["codes"]
    assert len(codes) == 10
    assert StaticToken.objects.filter(device__user=agent_a).count() == 10
    again = client.post(reverse("admin:two_factor"), {"new_recovery_codes": "1"})
    assert set(again.context["codes"]).isdisjoint(codes)  # the earlier codes stop working
    assert StaticToken.objects.filter(device__user=agent_a).count() == 10


def test_an_administrator_resets_a_lost_authenticator(client, administrator_a, agent_a):
    from django.test import Client

    from carehub.two_factor import issue_recovery_codes

    enrolled_authenticator(agent_a)
    issue_recovery_codes(agent_a, actor=agent_a)
    agents_browser = Client()
    agents_browser.force_login(agent_a)
    client.force_login(administrator_a)
    page = client.get(reverse("admin:carehub_user_change", args=[agent_a.pk]))
    url = reverse("admin:carehub_user_reset_second_factor", args=[agent_a.pk])
    assert url.encode() in page.content
    assert "reason" in client.post(url, {"reason": ""}).context["form"].errors

    response = client.post(url, {"reason": "phone lost, ticket 4711"})

    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=agent_a).exists()
    assert not StaticToken.objects.filter(device__user=agent_a).exists()
    assert agents_browser.get(reverse("admin:index")).status_code == 302  # signed out
    record = agent_a.history.latest()
    assert (record.history_user, record.history_change_reason) == (
        administrator_a,
        "Second factor reset: phone lost, ticket 4711",
    )
    sign_in(client, agent_a)  # next sign-in: password, then a new authenticator
    assert client.get(reverse("admin:index"))["Location"] == reverse("admin:two_factor")


def test_nobody_resets_their_own_or_another_clients_second_factor(
    client, administrator_a, persona, org_a, org_b
):
    from carehub.errors import NotAllowed
    from carehub.two_factor import reset_second_factor

    shared = persona("agent", org_a, org_b)
    enrolled_authenticator(shared)
    administrator_b = persona("administrator", org_b)
    client.force_login(administrator_b)
    url = reverse("admin:carehub_user_reset_second_factor", args=[shared.pk])
    assert client.post(url, {"reason": "takeover"}).status_code == 403
    with pytest.raises(NotAllowed):
        reset_second_factor(shared, actor=administrator_b, reason="takeover")
    with pytest.raises(NotAllowed, match="recovery codes"):
        reset_second_factor(administrator_a, actor=administrator_a, reason="lost")
    assert TOTPDevice.objects.filter(user=shared).exists()
