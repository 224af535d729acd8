"""The actor a CLI command's audit entries name, also for a uid without an account."""

from __future__ import annotations

import os
import pwd

import pytest

from idp.cli.operator import cli_actor, operator_name

NAME_VARIABLES = ("LOGNAME", "USER", "LNAME", "USERNAME")


def test_the_operator_is_the_local_user(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in NAME_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    assert operator_name() == pwd.getpwuid(os.getuid()).pw_name
    monkeypatch.setenv("LOGNAME", "ceremony-officer")
    assert cli_actor() == "cli:ceremony-officer"


def test_a_uid_without_an_account_is_named_by_its_number(monkeypatch: pytest.MonkeyPatch) -> None:
    """A container platform's arbitrary uid has no /etc/passwd entry: the CA
    ceremony still runs, audited as uid:<n> (it crashed in getpass before)."""
    for variable in NAME_VARIABLES:
        monkeypatch.delenv(variable, raising=False)

    def no_account(uid: int) -> pwd.struct_passwd:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_account)
    assert operator_name() == f"uid:{os.getuid()}"
    assert cli_actor() == f"cli:uid:{os.getuid()}"
