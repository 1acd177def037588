"""One address is one recipient, as the command line shows it: an import warns about
profiles that share an address (and still imports), and ``profiles show`` names them."""

import json
from pathlib import Path

from cli_runner import CliRunner


def test_an_import_warns_about_shared_addresses_and_show_names_the_twins(
    cli: CliRunner, tmp_path: Path
) -> None:
    db = str(tmp_path / "store.db")
    first = tmp_path / "first.csv"
    first.write_text("identity,email\nidentity-a,X@Example.com\n", encoding="utf-8")
    second = tmp_path / "second.csv"
    second.write_text("identity,email\nidentity-b,x@example.COM\n", encoding="utf-8")
    assert cli("profiles", "import", str(first), "--db", db)[0] == 0

    code, out, err = cli("profiles", "import", str(second), "--db", db)

    assert (code, err) == (0, "")
    assert "Warning: 1 address shared by several profiles; each is one recipient" in out
    assert "  x@example.com: identity-a, identity-b\n" in out
    code, out, _ = cli("profiles", "show", "identity-a", "--json", "--db", db)
    assert json.loads(out)["same_address"] == ["identity-b"]
    code, out, _ = cli("profiles", "show", "identity-b", "--db", db)
    assert "Same address as: identity-a (one recipient" in out
    code, out, _ = cli("profiles", "import", str(second), "--json", "--db", db)
    assert json.loads(out)["shared_addresses"] == 1
