"""What every ACME route needs, built once per application: nonces, CAs served, profiles.

Held on ``app.state`` (each app follows its own settings, as everywhere in
Hoviyat), built on first use so that nothing is read at import.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import State

from ca.names import ISSUING_CAS
from idp.acme.nonces import Nonces
from idp.acme.paths import AcmePaths
from idp.acme.problems import not_found
from idp.context import Hoviyat
from policies.certificate_profiles import load_profiles


@dataclass(frozen=True)
class AcmeServer:
    hoviyat: Hoviyat
    nonces: Nonces
    # The ACME profiles (settings.profiles that exist), name -> description.
    profiles: dict[str, str]
    # Issuing CA -> the ACME profiles it issues; a CA with none is not served.
    cas: dict[str, tuple[str, ...]]

    def paths(self, ca: str) -> AcmePaths:
        """The URLs of CA ``ca``; an unknown CA is a 404 problem."""
        if ca not in self.cas:
            raise not_found(f"no ACME server for {ca!r}; this server has {sorted(self.cas)}")
        return AcmePaths(base=self.hoviyat.settings.issuer.rstrip("/"), ca=ca)

    def serves(self, ca: str) -> bool:
        return ca in self.cas


def build_server(hoviyat: Hoviyat) -> AcmeServer:
    settings = hoviyat.acme_settings
    loaded = load_profiles()
    profiles = {name: loaded[name].description for name in settings.profiles if name in loaded}
    cas: dict[str, list[str]] = {}
    for name in profiles:
        issuing = loaded[name].issuing_ca
        if issuing in ISSUING_CAS:
            cas.setdefault(issuing, []).append(name)
    return AcmeServer(
        hoviyat=hoviyat,
        nonces=Nonces(hoviyat.secrets, settings.nonce_lifetime_seconds),
        profiles=profiles,
        cas={ca: tuple(names) for ca, names in cas.items()},
    )


def acme_server(request: Request) -> AcmeServer:
    """The app's :class:`AcmeServer` (a dependency, or called by handlers)."""
    state: State = request.app.state
    server: AcmeServer | None = getattr(state, "acme_server", None)
    if server is None:
        server = build_server(state.hoviyat)
        state.acme_server = server
    return server
