"""Where the files that ship beside the code are: styles/ and sample_data/.

In a wheel they sit inside the package (``app/styles``, ``app/sample_data``,
see pyproject's force-include); in a checkout or an editable install, at the
top of the repository.
"""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """The folder ``name`` (``styles`` or ``sample_data``), wherever it was installed."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"subgroups is installed without its {name}/ folder")
