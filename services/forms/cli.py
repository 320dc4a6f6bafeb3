"""`ibest forms link|links revoke|keys create|list|revoke`: clinicians' links and site keys."""

from __future__ import annotations

import argparse

from ibest.backbone.settings import Settings
from services.forms import bootstrap
from services.forms.domain.access import KeyRuleError
from services.forms.settings import FormsSettings
from shared.links import ClinicianForm

FORMS = [f.value for f in ClinicianForm]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("forms", help="the forms: clinicians' links and site teams' keys")
    area = p.add_subparsers(dest="command", required=True)
    link = area.add_parser("link", help="a fresh signed link for a clinician (last line)")
    link.add_argument("--clinician", required=True, help="the clinician's reference")
    link.add_argument("--form", required=True, choices=FORMS)
    link.set_defaults(func=link_command)
    links = area.add_parser("links", help="revoke a clinician's links").add_subparsers(
        dest="action", required=True
    )
    revoke_links = links.add_parser(
        "revoke", help="refuse every link of this form made so far for this clinician"
    )
    revoke_links.add_argument("--clinician", required=True)
    revoke_links.add_argument("--form", required=True, choices=FORMS)
    revoke_links.set_defaults(func=revoke_links_command)
    erase = area.add_parser(
        "erase-patient",
        help="delete a patient's record in the forms (reference, PSFS activity names, links)",
    )
    erase.add_argument("--trust", required=True, help="the trust's ODS code, e.g. RTH")
    erase.add_argument("--patient", required=True, help="the patient reference")
    erase.set_defaults(func=erase_command)
    keys = area.add_parser("keys", help="site teams' keys").add_subparsers(
        dest="action", required=True
    )
    create = keys.add_parser(
        "create", help="a new key for a site (shown once, on the last line); two at most"
    )
    create.add_argument("--site", required=True, help="the site's ODS code, e.g. RTH08")
    create.set_defaults(func=create_command)
    keys.add_parser("list", help="every key: id, site, created, revoked").set_defaults(
        func=list_command
    )
    revoke = keys.add_parser("revoke", help="refuse a key (and end its sessions) from now on")
    revoke.add_argument("key_id")
    revoke.set_defaults(func=revoke_command)


async def link_command(args: argparse.Namespace, settings: Settings) -> int:
    async with bootstrap.admin(settings, FormsSettings()) as (_, links):
        print(f"{args.form} link for clinician {args.clinician}:")
        print(links.link(args.clinician, ClinicianForm(args.form)))
    return 0


async def revoke_links_command(args: argparse.Namespace, settings: Settings) -> int:
    async with bootstrap.admin(settings, FormsSettings()) as (_, links):
        await links.revoke(args.clinician, ClinicianForm(args.form))
    print(f"revoked every {args.form} link made so far for clinician {args.clinician}")
    return 0


async def create_command(args: argparse.Namespace, settings: Settings) -> int:
    async with bootstrap.admin(settings, FormsSettings()) as (keys, _):
        try:
            key, token = await keys.create(args.site)
        except KeyRuleError as exc:
            print(f"ibest forms: {exc}")
            return 1
    print(
        f"created key {key.key_id} for site {key.site}. It is shown only now: give it to the "
        "site team over a secure channel. The key:"
    )
    print(token)
    return 0


async def list_command(args: argparse.Namespace, settings: Settings) -> int:
    async with bootstrap.admin(settings, FormsSettings()) as (keys, _):
        found = await keys.list()
    if not found:
        print("no keys")
    for key in found:
        state = f"revoked {key.revoked_at.isoformat()}" if key.revoked_at else "active"
        print(f"{key.key_id}  {key.site}  created {key.created_at.isoformat()}  {state}")
    return 0


async def revoke_command(args: argparse.Namespace, settings: Settings) -> int:
    async with bootstrap.admin(settings, FormsSettings()) as (keys, _):
        try:
            key = await keys.revoke(args.key_id)
        except KeyRuleError as exc:
            print(f"ibest forms: {exc}")
            return 1
    print(f"revoked key {key.key_id} of site {key.site}")
    return 0


async def erase_command(args: argparse.Namespace, settings: Settings) -> int:
    async with bootstrap.admins(settings, FormsSettings()) as (_, _links, patients):
        records, links = await patients.erase(args.trust, args.patient)
    print(f"erased {records} patient record(s) and {links} link(s) of {args.patient}")
    return 0
