"""Personas and shared fixtures.

Organization A and B are two clients. Every persona but `agent_b` works for A only, so every
test can check both what a persona may see and what it must never see.
"""

import os

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from carehub import db_roles, roles
from carehub.history import get_system_user
from carehub.services import assign_role, grant_organization
from tests.patients.factories import (
    OrganizationFactory,
    PatientFactory,
    PayerProgramFactory,
    ProviderFactory,
    SiteFactory,
)

PASSWORD = "a-long-test-password-42"


@pytest.fixture(scope="session")
def _owner_makes_the_test_database():
    """With two PostgreSQL roles (MIGRATION_DATABASE_URL), the owner creates, migrates and drops
    the test database; between those the tests run as the application's restricted role."""
    if db_roles.two_roles():
        db_roles.use_owner()
    yield
    if db_roles.two_roles():
        db_roles.use_app_role()


@pytest.fixture(autouse=True, scope="session")
def _subprocesses_run_as_the_application():
    """Programs the tests start (qcluster, `manage.py check`) are the application: like every
    process but migrate they get DATABASE_URL alone, not the owner's MIGRATION_DATABASE_URL."""
    os.environ.pop("MIGRATION_DATABASE_URL", None)


@pytest.fixture(scope="session")
def django_db_setup(_owner_makes_the_test_database, django_db_setup):
    if db_roles.two_roles():
        db_roles.use_app_role()
    yield
    if db_roles.two_roles():
        db_roles.use_owner()


@pytest.fixture(autouse=True)
def _no_login_throttling_between_tests(settings):
    # Each test starts with a clean slate of failed logins; throttling has its own tests.
    settings.AXES_ENABLED = os.environ.get("CAREHUB_TEST_AXES", "") == "1"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 at production strength costs ~0.3 s per persona; the hasher is not under test here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def enrolled_authenticator(user):
    """The user's confirmed authenticator app (TOTP device), enrolled on first use."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)


@pytest.fixture(autouse=True)
def _test_client_sign_in_passes_the_second_factor(monkeypatch):
    """`client.force_login` and `client.login` skip the sign-in form and so its code. The session
    they make is marked verified by the user's real (enrolled) authenticator, as the form would
    mark it; signing in itself is tested through the form in tests/carehub/test_two_factor.py."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY

    force_login, login = Client.force_login, Client.login

    def verify_session(client) -> None:
        session = client.session
        user = get_user_model().objects.get(pk=session["_auth_user_id"])
        session[DEVICE_ID_SESSION_KEY] = enrolled_authenticator(user).persistent_id
        session.save()

    def force_login_with_second_factor(self, user, backend=None):
        force_login(self, user, backend)
        verify_session(self)

    def login_with_second_factor(self, **credentials):
        signed_in = login(self, **credentials)
        if signed_in:
            verify_session(self)
        return signed_in

    monkeypatch.setattr(Client, "force_login", force_login_with_second_factor)
    monkeypatch.setattr(Client, "login", login_with_second_factor)


@pytest.fixture
def system_user(db):
    return get_system_user()


@pytest.fixture
def org_a(db):
    return OrganizationFactory(slug="org-a", name="Riverside Family Practice")


@pytest.fixture
def org_b(db):
    return OrganizationFactory(slug="org-b", name="Lakeshore ACO")


@pytest.fixture
def patient_a(org_a):
    site = SiteFactory(organization=org_a)
    return PatientFactory(organization=org_a, attributed_site=site, family_name="Alvarez")


@pytest.fixture
def patient_b(org_b):
    site = SiteFactory(organization=org_b)
    return PatientFactory(organization=org_b, attributed_site=site, family_name="Alvarado")


def make_persona(username, role, organizations, system_user):
    user = get_user_model().objects.create_user(username=username, password=PASSWORD, is_staff=True)
    if role:
        assign_role(user, role, actor=system_user, reason="test persona")
    for organization in organizations:
        grant_organization(user, organization, actor=system_user, reason="test persona")
    return user


@pytest.fixture
def persona(org_a, org_b, system_user):
    """persona("agent") → a user of that role in org A; persona("agent", org_b) for org B."""

    def build(role_key: str, *organizations):
        role = {
            "agent": roles.AGENT,
            "supervisor": roles.SUPERVISOR,
            "coordinator": roles.COORDINATOR,
            "auditor": roles.AUDITOR,
            "administrator": roles.ADMINISTRATOR,
            "nobody": None,
        }[role_key]
        orgs = organizations or (org_a,)
        name = f"{role_key}-{'-'.join(o.slug for o in orgs)}"
        return make_persona(name, role, orgs, system_user)

    return build


@pytest.fixture
def agent_a(persona):
    return persona("agent")


@pytest.fixture
def agent_b(persona, org_b):
    return persona("agent", org_b)


@pytest.fixture
def supervisor_a(persona):
    return persona("supervisor")


@pytest.fixture
def coordinator_a(persona):
    return persona("coordinator")


@pytest.fixture
def auditor_a(persona):
    return persona("auditor")


@pytest.fixture
def administrator_a(persona):
    return persona("administrator")


PERSONAS_OF_ORG_A = ["agent_a", "supervisor_a", "coordinator_a", "auditor_a", "administrator_a"]


@pytest.fixture
def postgres_only():
    if connection.vendor == "postgresql":
        return
    if os.environ.get("CAREHUB_REQUIRE_POSTGRES") == "1":
        pytest.fail("CAREHUB_REQUIRE_POSTGRES=1 but the tests run on " + connection.vendor)
    pytest.skip("needs PostgreSQL (set DATABASE_URL); SQLite has no row locks or triggers")


__all__ = ["PASSWORD", "PERSONAS_OF_ORG_A", "PayerProgramFactory", "ProviderFactory"]
