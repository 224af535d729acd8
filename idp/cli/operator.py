"""Who runs a CLI command: the actor its audit entries name."""

from __future__ import annotations

import getpass
import os


def operator_name() -> str:
    """The local user's name, or ``uid:<n>`` for a uid without an account.

    A container platform may run the image under an arbitrary uid with no
    /etc/passwd entry (OpenShift does); getpass then has no name to give, and a
    CA ceremony must still run and be audited.
    """
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def cli_actor() -> str:
    """The audit actor id of a CLI command: ``cli:<operator>``."""
    return f"cli:{operator_name()}"
