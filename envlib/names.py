"""Human run names like the tutorial's ("Sean Kelley"), made safe to use as folder names.

The tutorial named runs with ``names.get_full_name()``; here a small built-in list of
first and last names plus a random hex suffix gives ids such as ``sean-kelley-3f2a``,
which match :data:`envlib.runs.RUN_ID_PATTERN` and cannot name a path outside the
runs folder.
"""

from __future__ import annotations

import re
import secrets
import unicodedata

from envlib.runs import is_valid_run_id

FIRST_NAMES = (
    "ada", "alan", "anna", "bertha", "betty", "carl", "clara", "david", "dora", "emil",
    "emmy", "ernst", "frida", "gary", "grace", "hanna", "hedy", "ida", "irene", "jakob",
    "jane", "karl", "kurt", "lena", "lise", "marie", "max", "nils", "olga", "otto",
    "paul", "rosa", "ruth", "sean", "sofia", "tom", "ulla", "vera", "walter", "wilma",
)  # fmt: skip
LAST_NAMES = (
    "archibald", "becker", "bohr", "buchwald", "curie", "dirac", "einstein", "fermi",
    "franklin", "gordon", "hahn", "heisenberg", "hertz", "hopper", "kelley", "klein",
    "lovelace", "maxwell", "meitner", "noether", "pauli", "planck", "roentgen", "schmidt",
    "sparkman", "thomson", "wagner", "weber", "wolf", "yukawa",
)  # fmt: skip


def generate_run_id(taken: set[str] | frozenset[str] = frozenset()) -> str:
    """A new run id such as ``sean-kelley-3f2a`` that is not in ``taken``.

    :param taken: ids already in use (e.g. the folders of the runs directory).
    """
    while True:
        candidate = (
            f"{secrets.choice(FIRST_NAMES)}-{secrets.choice(LAST_NAMES)}-{secrets.token_hex(2)}"
        )
        if candidate not in taken:
            return candidate


def sanitize_run_id(name: str) -> str:
    """Turn a user-chosen name into a run id, or raise ``ValueError`` if nothing is left.

    Accents are dropped, letters lowercased, every other run of characters becomes one
    dash (so ``"../../etc"`` becomes ``"etc"`` and ``"Sean Kelley"`` ``"sean-kelley"``),
    and the result is cut to 64 characters.

    :param name: any text.
    :return: an id matching :data:`envlib.runs.RUN_ID_PATTERN`.
    """
    if not isinstance(name, str):
        raise ValueError(f"a run name must be text, got {type(name).__name__}")
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:64].strip("-")
    if not is_valid_run_id(slug):
        raise ValueError(f"the name {name!r} has no letters or digits to make a run id from")
    return slug


def display_name(run_id: str) -> str:
    """``"sean-kelley-3f2a"`` -> ``"Sean Kelley 3f2a"``, for showing a run to people."""
    return " ".join(part.capitalize() if part.isalpha() else part for part in run_id.split("-"))
