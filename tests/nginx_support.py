"""nginx for tests: a throwaway self-signed pair and a main config around a site file.

The deploy tests, the mTLS and ACME servers and the three-host cluster all run the
real ``deploy/nginx`` site as an unprivileged nginx under a temporary folder; this
is the one place that knows what such an nginx needs around the site.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def self_signed(key: Path, certificate: Path, common_name: str = "id.example.ir") -> None:
    """A P-256 key and a one-day self-signed certificate, made by the openssl CLI."""
    key.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", f"/CN={common_name}",
         "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True,
    )  # fmt: skip


def site_tls(folder: Path) -> None:
    """The pair where the deploy site expects it: ``tls/hoviyat.key`` and ``.crt``."""
    self_signed(folder / "tls" / "hoviyat.key", folder / "tls" / "hoviyat.crt")


def main_config(folder: Path, site: Path, worker_connections: int = 64) -> Path:
    """An nginx.conf in ``folder`` (relative certificate paths resolve there) that
    includes ``site``, with its pid, log and temporary files all inside ``folder``."""
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / "temp" / name).mkdir(parents=True, exist_ok=True)
    config = folder / "nginx.conf"
    config.write_text(
        f"""
pid {folder}/nginx.pid;
error_log {folder}/error.log;
daemon off;
worker_processes 1;
events {{ worker_connections {worker_connections}; }}
http {{
    access_log off;
    client_body_temp_path {folder}/temp/body;
    proxy_temp_path {folder}/temp/proxy;
    fastcgi_temp_path {folder}/temp/fastcgi;
    uwsgi_temp_path {folder}/temp/uwsgi;
    scgi_temp_path {folder}/temp/scgi;
    include {site};
}}
"""
    )
    return config
