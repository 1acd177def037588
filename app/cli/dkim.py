"""The ``subgroups dkim dns`` command: the TXT record to publish for DKIM.

The key, domain and selector come from ``subgroups settings set dkim-key FILE.pem``,
``dkim-domain D`` and ``dkim-selector S``.
"""

import argparse

from app.cli.options import Command, db_option, json_option
from app.cli.output import print_json
from app.core import dkim_keys, dkim_signing, settings
from app.core.errors import RuleRefused
from app.core.store import Store


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    actions = commands.add_parser(
        "dkim", help="DKIM signing: the DNS record to publish"
    ).add_subparsers(dest="action", metavar="ACTION", required=True)
    dns = actions.add_parser(
        "dns",
        parents=[db_option(), json_option()],
        help='print the TXT record (S._domainkey.D IN TXT "v=DKIM1; k=rsa; p=...")',
    )
    dns.set_defaults(func="dkim_dns")


def dkim_dns(args: argparse.Namespace, store: Store) -> int:
    with store.read() as session:
        found = settings.get_settings(session)
    missing = found.dkim_missing()
    if missing:
        raise RuleRefused(
            "DKIM is not set up: "
            + "; ".join(f"subgroups settings set {key} {_example(key)}" for key in missing)
        )
    assert found.dkim_domain and found.dkim_selector and found.dkim_key
    key = dkim_keys.load_key(store.store_id, found.dkim_key)
    if args.json:
        print_json(
            {
                "name": dkim_signing.dns_name(found.dkim_domain, found.dkim_selector),
                "type": "TXT",
                "value": dkim_signing.txt_value(key),
            }
        )
    else:
        print(dkim_signing.dns_record(found.dkim_domain, found.dkim_selector, key))
    return 0


def _example(key: str) -> str:
    return {
        settings.DKIM_DOMAIN: "example.com",
        settings.DKIM_SELECTOR: "s1",
        settings.DKIM_KEY: "FILE.pem",
    }[key]


COMMANDS: dict[str, Command] = {"dkim_dns": dkim_dns}
