"""Agents for the load test: N agent users of one organization with an authenticator each.

    DEBUG=true DATABASE_URL=… python -m loadtest.agents --organization scale --agents 50

Writes their user names, password and TOTP secrets to a git-ignored file (default
var/loadtest_agents.json, git-ignored, mode 600) that locustfile.py reads to sign in through the
real login form. DEBUG only: these are throwaway accounts with a known password.
"""

import argparse
import json
import os
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--organization", default="scale")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument(
        "--output",
        default=str(Path(__file__).resolve().parents[1] / "var" / "loadtest_agents.json"),
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carehub.settings")
    import django

    django.setup()
    from django.conf import settings

    if not settings.DEBUG:
        sys.exit("loadtest.agents refuses to run with DEBUG off (known passwords)")
    from carehub import roles
    from carehub.history import get_system_user
    from carehub.models import User
    from carehub.services import assign_role, grant_organization
    from carehub.two_factor import enrol_demo_authenticator, secret_key
    from patients.models import Organization

    organization = Organization.objects.filter(slug=args.organization).first()
    if organization is None:
        sys.exit(f"no organization {args.organization!r}: run seed_scale first")
    system = get_system_user()
    password = settings.CAREHUB_DEMO_PASSWORD
    agents = []
    for n in range(args.agents):
        username = f"load-agent-{n:02d}"
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User.objects.create_user(username, password=password, is_staff=True)
            assign_role(user, roles.AGENT, actor=system, reason="load test agent")
            grant_organization(user, organization, actor=system, reason="load test agent")
        device = enrol_demo_authenticator(user)
        agents.append({"username": username, "password": password, "totp": secret_key(device)})
    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(agents))
    print(f"{len(agents)} agents of {organization.slug} written to {path}")


if __name__ == "__main__":
    main()
