"""Demo data for `manage.py seed_demo`: deterministic, synthetic, never real PHI."""

import datetime
import random
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import transaction
from faker import Faker

from carehub import roles
from carehub.history import bulk_create_with_history, get_system_user, save_with_history
from carehub.services import assign_role, grant_organization
from patients.models import Organization, Patient, PayerProgram, Provider, Site

REASON = "demo data (seed_demo)"
SEED = 20261122

DEMO_ORGANIZATIONS = [
    {
        "slug": "riverside",
        "name": "Riverside Family Practice",
        "kind": Organization.Kind.PRACTICE,
        "timezone": "America/New_York",
        "contact_phone": "(617) 555-0142",
        "area_codes": [617, 781, 508, 978],
        "sites": [("RFP-N", "Riverside North Clinic"), ("RFP-S", "Riverside South Clinic")],
        "user_suffix": "",
    },
    {
        "slug": "lakeshore",
        "name": "Lakeshore ACO",
        "kind": Organization.Kind.ACO,
        "timezone": "America/Chicago",
        "contact_phone": "(312) 555-0178",
        "area_codes": [312, 773, 630, 847],
        "sites": [("LS-1", "Lakeshore Medical Group"), ("LS-2", "Harbor Point Health")],
        "user_suffix": "2",
    },
]

DEMO_ROLES = [
    ("agent", roles.AGENT),
    ("supervisor", roles.SUPERVISOR),
    ("coordinator", roles.COORDINATOR),
    ("auditor", roles.AUDITOR),
    ("admin", roles.ADMINISTRATOR),
]

PROGRAMS = [
    ("MCR", "Medicare Shared Savings", "CMS", PayerProgram.LineOfBusiness.MEDICARE),
    (
        "MA",
        "Blue Horizon Medicare Advantage",
        "Blue Horizon",
        PayerProgram.LineOfBusiness.MEDICARE_ADVANTAGE,
    ),
    ("COM", "Blue Horizon PPO", "Blue Horizon", PayerProgram.LineOfBusiness.COMMERCIAL),
]


@dataclass
class SeedReport:
    already_seeded: bool = False
    patients: int = 0
    users: list[tuple[str, str, str]] = field(default_factory=list)


def demo_usernames() -> list[tuple[str, str, str]]:
    return [
        (f"{prefix}{org['user_suffix']}", role, org["name"])
        for org in DEMO_ORGANIZATIONS
        for prefix, role in DEMO_ROLES
    ]


@transaction.atomic
def seed_demo(*, patients: int, password: str) -> SeedReport:
    report = SeedReport(users=demo_usernames())
    if Organization.objects.filter(slug=DEMO_ORGANIZATIONS[0]["slug"]).exists():
        report.already_seeded = True
        return report

    actor = get_system_user()
    fake = Faker("en_US")
    fake.seed_instance(SEED)
    rng = random.Random(SEED)
    for index, spec in enumerate(DEMO_ORGANIZATIONS):
        organization = save_with_history(
            Organization(
                slug=spec["slug"],
                name=spec["name"],
                kind=spec["kind"],
                contact_phone=spec["contact_phone"],
            ),
            actor=actor,
            reason=REASON,
        )
        sites = [
            save_with_history(
                Site(organization=organization, code=code, name=name, timezone=spec["timezone"]),
                actor=actor,
                reason=REASON,
            )
            for code, name in spec["sites"]
        ]
        providers = [
            save_with_history(
                Provider(
                    organization=organization,
                    given_name=fake.first_name(),
                    family_name=fake.last_name(),
                    credentials=rng.choice(["MD", "DO", "NP"]),
                    specialty=rng.choice(["Family Medicine", "Internal Medicine", "Pediatrics"]),
                    npi=f"{1_000_000_000 + index * 1000 + n}",
                    site=sites[n % len(sites)],
                ),
                actor=actor,
                reason=REASON,
            )
            for n in range(6)
        ]
        programs = [
            save_with_history(
                PayerProgram(
                    organization=organization,
                    code=code,
                    name=name,
                    payer_name=payer,
                    line_of_business=line,
                ),
                actor=actor,
                reason=REASON,
            )
            for code, name, payer, line in PROGRAMS
        ]
        share = patients // len(DEMO_ORGANIZATIONS) + (
            1 if index < patients % len(DEMO_ORGANIZATIONS) else 0
        )
        rows = [
            _fake_patient(fake, rng, organization, sites, providers, programs, spec, n)
            for n in range(share)
        ]
        bulk_create_with_history(rows, actor=actor, reason=REASON)
        report.patients += len(rows)
        _create_users(organization, spec["user_suffix"], password, actor)
    return report


def _fake_patient(fake, rng, organization, sites, providers, programs, spec, n) -> Patient:
    sex = rng.choice([Patient.Sex.FEMALE, Patient.Sex.MALE])
    given = fake.first_name_female() if sex == Patient.Sex.FEMALE else fake.first_name_male()
    today = datetime.date(2026, 1, 1)
    birth_date = today - datetime.timedelta(days=rng.randint(1 * 365, 90 * 365))
    program = rng.choice(programs) if rng.random() < 0.85 else None
    provider = rng.choice(providers)
    return Patient(
        organization=organization,
        mrn=f"{organization.slug[:2].upper()}{n + 1:07d}",
        given_name=given,
        family_name=fake.last_name(),
        birth_date=birth_date,
        sex=sex,
        phone=f"+1{rng.choice(spec['area_codes'])}555{rng.randint(0, 9999):04d}",
        email=f"{given.lower()}.{n}@example.org" if rng.random() < 0.7 else "",
        address_line=fake.street_address(),
        city=fake.city(),
        state=fake.state_abbr(include_territories=False),
        postal_code=fake.postcode(),
        preferred_language=rng.choices(["en", "es", "vi", "zh"], weights=[80, 14, 3, 3])[0],
        timezone=spec["timezone"],
        status=rng.choices(
            [
                Patient.Status.ACTIVE,
                Patient.Status.MOVED,
                Patient.Status.DISENROLLED,
                Patient.Status.DECEASED,
            ],
            weights=[92, 3, 4, 1],
        )[0],
        attributed_provider=provider,
        attributed_site=provider.site,
        payer_program=program,
        member_id=f"{program.code}{rng.randint(10**8, 10**9 - 1)}" if program else "",
    )


def _create_users(organization: Organization, suffix: str, password: str, actor) -> None:
    User = get_user_model()
    for prefix, role in DEMO_ROLES:
        user = User(
            username=f"{prefix}{suffix}",
            first_name=prefix.capitalize(),
            last_name=organization.name,
            is_staff=True,
        )
        user.set_password(password)
        save_with_history(user, actor=actor, reason=REASON)
        assign_role(user, role, actor=actor, reason=REASON)
        grant_organization(user, organization, actor=actor, reason=REASON)
