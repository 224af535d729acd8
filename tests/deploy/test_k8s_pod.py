"""One pod of deploy/k8s, run for real without a container runtime.

The manifests can be valid and still describe a pod that never becomes ready: a data
folder the process may not chmod, a secret file it cannot read, a setting that only
fails at start. Here a private mount namespace plays the pod: the root filesystem is
read-only, the emptyDirs are tmpfs (root-owned, group 10001, as kubelet makes them with
fsGroup), the Secret files are 0440 root:10001 on read-only mounts, the PKCS#11 module
is SoftHSM copied to the path the ConfigMap names, and every Hoviyat process runs as uid
and gid 10001 with no capabilities, configured by the ConfigMap itself. It runs the
migration Job's `init`, `ca init` through the module, the Deployment's `serve`, asks
/readyz, and stops it with SIGTERM. Needs root, unshare, setpriv, SoftHSM and
PostgreSQL (HOVIYAT_TEST_DATABASE_URL); skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deploy_support import DEPLOY, REPO, load_documents
from sqlalchemy import create_engine, text

PG_URL = os.environ.get("HOVIYAT_TEST_DATABASE_URL", "")
SOFTHSM = Path("/usr/lib/softhsm/libsofthsm2.so")
# Mount points the namespace needs on the real filesystem (created empty, removed after).
MOUNT_POINTS = ("/var/lib/hoviyat", "/etc/hoviyat/secrets", "/etc/hoviyat/pkcs11", "/opt/pkcs11")
SERVE_PORT, REGISTRY_PORT, BAD_PORT = 19701, 19702, 19703
POD_TMP = Path("/tmp")  # an emptyDir in the pod: a tmpfs here

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="mount namespaces are Linux's"),
    pytest.mark.skipif(os.geteuid() != 0, reason="making a mount namespace needs root"),
    pytest.mark.skipif(
        not all(shutil.which(tool) for tool in ("unshare", "setpriv", "softhsm2-util"))
        or not SOFTHSM.exists(),
        reason="needs unshare, setpriv and SoftHSM (apt-get install softhsm2)",
    ),
    pytest.mark.skipif(not PG_URL, reason="HOVIYAT_TEST_DATABASE_URL is unset: the pod needs it"),
]


def configmap() -> dict[str, str]:
    (document,) = load_documents(DEPLOY / "k8s" / "configmap.yaml")
    return dict(document["data"])


def hidden_ancestor(path: Path) -> Path | None:
    """The topmost folder above ``path`` that uid 10001 may not pass through."""
    for parent in reversed(path.parents):
        if parent != Path("/") and not parent.stat().st_mode & stat.S_IXOTH:
            return parent
    return None


def expose_lines(paths: list[Path]) -> list[str]:
    """Shell lines that mount the pod's tmpfs /tmp and show uid 10001 ``paths`` (python, the
    checkout) and nothing beside them: each path under /tmp or under a folder 10001 may not
    pass is bound aside, a tmpfs covers that folder, and the path is bound back in place."""
    covers: dict[Path, Path] = {}
    for path in paths:
        ancestor = POD_TMP if POD_TMP in path.parents else hidden_ancestor(path)
        if ancestor is not None:
            covers[path] = ancestor
    lines: list[str] = []
    for index, path in enumerate(covers):
        lines += [f"mkdir -p /dev/shm/h7pod{index}", f"mount --bind {path} /dev/shm/h7pod{index}"]
    for cover in sorted(set(covers.values()) | {POD_TMP}):
        mode = "1777" if cover == POD_TMP else "0755"
        lines.append(f"mount -t tmpfs -o mode={mode} tmpfs {cover}")
    for index, path in enumerate(covers):
        lines += [f"mkdir -p {path}", f"mount --bind /dev/shm/h7pod{index} {path}"]
    return lines


def readable_copy_lines(path: Path) -> list[str]:
    """Shell lines that put a copy of ``path`` in its place, readable by uid 10001, as the
    image's files are. A checkout and venv made under a umask of 077 (CI's) are root's
    alone; the copy lives in a tmpfs of the namespace and goes with it."""
    aside = "/dev/shm/h7podcopy"
    return [
        f"mkdir -p {aside} && mount --bind {path} {aside}",
        f"mount -t tmpfs -o mode=0755 tmpfs {path}",
        f"cp -a {aside}/. {path}/ && chmod -R a+rX {path}",
        f"umount {aside}",
    ]


SCRIPT = Path(__file__).with_name("k8s_pod.sh")


@pytest.fixture
def pod_database() -> Iterator[str]:
    """A schema of its own, empty: the Job's `init` migrates it."""
    schema = f"hv_k8s_pod_{os.getpid()}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{separator}options=-csearch_path%3D{schema}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def mount_points() -> Iterator[None]:
    made = [Path(p) for p in MOUNT_POINTS if not Path(p).exists()]
    for path in made:
        # Modes set outright: under a umask of 077 (CI's) uid 10001 could not pass them.
        for folder in [*reversed(path.parents), path]:
            if not folder.exists():
                folder.mkdir()
                folder.chmod(0o755)
    yield
    for path in reversed(made):
        path.rmdir()
    for parent in ("/etc/hoviyat",):
        if Path(parent).is_dir() and not any(Path(parent).iterdir()):
            Path(parent).rmdir()


def run_pod(database_url: str) -> dict[str, Any]:
    settings = configmap()
    assert settings["HOVIYAT_CA_PKCS11_MODULE"].startswith("/opt/pkcs11/")
    python = Path(sys.executable)
    script = SCRIPT.read_text(encoding="utf-8")
    for name, value in {
        "@EXPOSE@": "\n".join(
            expose_lines([Path(sys.base_prefix), REPO]) + readable_copy_lines(REPO)
        ),
        "@SOFTHSM@": shlex.quote(str(SOFTHSM)),
        "@SERVE_PORT@": str(SERVE_PORT),
        "@REGISTRY_PORT@": str(REGISTRY_PORT),
        "@BAD_PORT@": str(BAD_PORT),
    }.items():
        script = script.replace(name, value)
    environment = {
        "PATH": os.environ["PATH"],
        "PY": str(python),
        **settings,
        "HOVIYAT_DATABASE_URL": database_url,
        "HOVIYAT_SMS_GATEWAY_TOKEN": "not-used",
        # The real registry's address in the ConfigMap; the synthetic one here.
        "HOVIYAT_REGISTRY_URL": f"http://127.0.0.1:{REGISTRY_PORT}",
    }
    try:
        result = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "bash", "-c", script],
            env=environment,
            cwd="/",
            capture_output=True,
            text=True,
            timeout=420,
            check=False,
        )
    finally:
        for leftover in Path("/dev/shm").glob("h7pod*"):
            if leftover.is_dir():
                leftover.rmdir()
            else:
                leftover.unlink()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results: dict[str, Any] = {}
    for line in result.stdout.splitlines():
        if line.startswith("RESULT "):
            _, key, value = line.split(" ", 2)
            results[key] = json.loads(value) if value[:1] in "[{" else value
    return results


def test_the_pod_described_by_the_manifests_starts_serves_and_stops(
    pod_database: str, mount_points: None
) -> None:
    results = run_pod(pod_database)
    assert results["root_writable"] == "false"
    # The Job: schema, policies and signing keys, and again with nothing to do.
    assert results["init"]["signing_keys_created"]
    assert results["init_again"]["signing_keys_created"] == []
    assert results["secrets_unchanged"] == "true"
    # The CA's keys made in the token through the module the ConfigMap names.
    assert "root" in results["ca_init"]["created"]
    assert all(a["key_ref"].startswith("pkcs11:") for a in results["ca_init"]["authorities"])
    # The Deployment's container: ready, with every dependency checked.
    status, body = results["readyz"]
    assert status == 200, body
    assert body["checks"] == {"database": "ok", "writer": "ok", "registry": "ok"}
    assert results["data_dir"] == "700 10001"
    assert int(results["stop_ms"]) < 20_000  # within terminationGracePeriodSeconds - preStop
    # Why HOVIYAT_DATA_DIR is a subfolder: the emptyDir's root is not the process's to chmod.
    assert int(results["data_root_refused"]) >= 1
