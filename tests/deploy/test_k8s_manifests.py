"""deploy/k8s: every manifest is valid against the Kubernetes OpenAPI schema, and says what
issue 17 asks (hardened pods, probes on /healthz and /readyz, secrets from Secret objects,
CA keys through a PKCS#11 module, one pod down at a time).

The schemas are the JSON schemas generated from Kubernetes' OpenAPI document that the
kubernetes-validate package ships (nothing is downloaded at test time), in their strict
form: a field the API does not have fails, as kubectl's server-side validation would.
"""

from __future__ import annotations

import copy
import json
import posixpath
from pathlib import Path
from typing import Any

import pytest
from deploy_support import (
    DEPLOY,
    accept_settings,
    load_documents,
    names_a_secret,
    unknown_settings,
)

from idp.secrets import _NAMES as SERVER_SECRET_NAMES
from idp.serving import SHUTDOWN_SECONDS
from idp.settings import Settings

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate is in the test extra"
)

K8S = DEPLOY / "k8s"
# The oldest release whose schema we hold the manifests to, and the newest the package knows.
VERSIONS = ("1.30", kubernetes_validate.latest_version())
KUSTOMIZATION = K8S / "kustomization.yaml"
NOT_IN_KUSTOMIZATION = {"migration-job.yaml", "secrets.example.yaml"}


def manifest_files() -> list[Path]:
    return sorted(path for path in K8S.glob("*.yaml") if path != KUSTOMIZATION)


def all_documents() -> list[dict[str, Any]]:
    return [doc for path in manifest_files() for doc in load_documents(path)]


def one(kind: str) -> dict[str, Any]:
    found = [doc for doc in all_documents() if doc["kind"] == kind]
    assert len(found) == 1, kind
    return found[0]


def secrets() -> dict[str, dict[str, str]]:
    return {
        doc["metadata"]["name"]: doc["stringData"]
        for doc in all_documents()
        if doc["kind"] == "Secret"
    }


def pod_specs() -> dict[str, dict[str, Any]]:
    return {
        "Deployment": one("Deployment")["spec"]["template"]["spec"],
        "Job": one("Job")["spec"]["template"]["spec"],
    }


def validate(document: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(document, version, strict=True)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_manifest_is_valid_against_the_kubernetes_schema(path: Path, version: str) -> None:
    documents = load_documents(path)
    assert documents
    for document in documents:
        validate(document, version)


@pytest.mark.parametrize(
    ("where", "change"),
    [
        ("misspelled field", lambda c: c["securityContext"].update(readOnlyRootFilesytem=True)),
        ("wrong type", lambda c: c["securityContext"].update(runAsNonRoot="yes")),
        ("unknown probe field", lambda c: c["readinessProbe"].update(path="/readyz")),
        ("port as a list", lambda c: c["ports"][0].update(containerPort=[8000])),
    ],
)
def test_attack_a_misspelled_or_mistyped_field_fails_validation(where: str, change: Any) -> None:
    """A typo in a security field would otherwise be dropped silently and the pod run open."""
    deployment = copy.deepcopy(one("Deployment"))
    change(deployment["spec"]["template"]["spec"]["containers"][0])
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment, VERSIONS[-1])


def test_kustomization_lists_every_manifest_but_the_job_and_the_secret_shapes() -> None:
    (kustomization,) = load_documents(KUSTOMIZATION)
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in manifest_files()} - NOT_IN_KUSTOMIZATION
    assert NOT_IN_KUSTOMIZATION <= {p.name for p in manifest_files()}


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def hardening_problems(spec: dict[str, Any]) -> list[str]:
    """What in a pod spec lets a compromised process do more than serve."""
    problems = []
    pod = spec.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            problems.append(flag)
    if spec.get("automountServiceAccountToken") is not False:
        problems.append("service account token mounted")
    if any("hostPath" in volume for volume in spec.get("volumes", [])):
        problems.append("hostPath volume")
    if pod.get("runAsNonRoot") is not True or pod.get("runAsUser", 0) == 0:
        problems.append("pod may run as root")
    for container in containers(spec):
        name = container["name"]
        context = container.get("securityContext", {})
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: writable root filesystem")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: privilege escalation allowed")
        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        if context.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{name}: capabilities not all dropped")
        if context.get("capabilities", {}).get("add"):
            problems.append(f"{name}: capabilities added")
        seccomp = context.get("seccompProfile", pod.get("seccompProfile", {}))
        if seccomp.get("type") != "RuntimeDefault":
            problems.append(f"{name}: no RuntimeDefault seccomp profile")
        if context.get("runAsUser") == 0 or context.get("runAsNonRoot") is False:
            problems.append(f"{name}: runs as root")
    return problems


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_pods_are_non_root_read_only_without_capabilities(kind: str) -> None:
    assert hardening_problems(pod_specs()[kind]) == []


@pytest.mark.parametrize(
    "weaken",
    [
        lambda s: s["containers"][0]["securityContext"].update(readOnlyRootFilesystem=False),
        lambda s: s["containers"][0]["securityContext"].update(allowPrivilegeEscalation=True),
        lambda s: s["containers"][0]["securityContext"]["capabilities"].update(add=["NET_ADMIN"]),
        lambda s: s["initContainers"][0]["securityContext"]["capabilities"].update(drop=[]),
        lambda s: s["securityContext"].update(runAsUser=0),
        lambda s: s["containers"][0]["securityContext"].update(
            seccompProfile={"type": "Unconfined"}
        ),
        lambda s: s.update(hostNetwork=True),
        lambda s: s.update(automountServiceAccountToken=True),
        lambda s: s["volumes"].append({"name": "host", "hostPath": {"path": "/"}}),
    ],
)
def test_attack_each_weakened_pod_spec_is_caught(weaken: Any) -> None:
    spec = copy.deepcopy(pod_specs()["Deployment"])
    weaken(spec)
    assert hardening_problems(spec) != []


def server() -> dict[str, Any]:
    (container,) = pod_specs()["Deployment"]["containers"]
    return dict(container)


def argument(arguments: list[str], option: str) -> str:
    return arguments[arguments.index(option) + 1]


def test_probes_liveness_on_healthz_readiness_on_readyz_at_the_served_port() -> None:
    container = server()
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert container["args"][0] == "serve"
    assert ports == {"http": int(argument(container["args"], "--port"))}
    assert argument(container["args"], "--host") == "0.0.0.0"  # the pod's own network
    for probe, path in (
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
        ("startupProbe", "/healthz"),
    ):
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}, probe


def test_stopping_a_pod_leaves_time_to_drain() -> None:
    """preStop lets endpoints drop the pod, then 'serve' drains within SHUTDOWN_SECONDS."""
    spec = pod_specs()["Deployment"]
    pause = server()["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert spec["terminationGracePeriodSeconds"] > pause + SHUTDOWN_SECONDS


def mounted_file(container: dict[str, Any], spec: dict[str, Any], path: str) -> tuple[str, str]:
    """(Secret name, key) of the Secret volume file at ``path`` in ``container``."""
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    for mount in container["volumeMounts"]:
        if posixpath.dirname(path) == mount["mountPath"]:
            assert mount.get("readOnly") is True, path
            source = volumes[mount["name"]]["secret"]
            return source["secretName"], posixpath.basename(path)
    raise AssertionError(f"{path} is on no mounted volume")


def settings_map() -> dict[str, str]:
    return dict(one("ConfigMap")["data"])


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_secrets_come_from_secret_objects_with_those_keys(kind: str) -> None:
    spec = pod_specs()[kind]
    container = spec["containers"][0]
    known = secrets()
    assert [ref["configMapRef"]["name"] for ref in container["envFrom"]] == ["hoviyat-settings"]
    for variable in container["env"]:
        reference = variable["valueFrom"]["secretKeyRef"]
        assert reference["key"] in known[reference["name"]], variable["name"]
    name, key = mounted_file(container, spec, settings_map()["HOVIYAT_SECRETS_FILE"])
    assert key in known[name]
    # The server secrets file holds exactly what idp/secrets.py reads.
    assert set(json.loads(known[name][key])) == set(SERVER_SECRET_NAMES)


def test_attack_no_secret_sits_in_the_configmap_or_a_plain_variable() -> None:
    for secret in ("HOVIYAT_CA_PKCS11_PIN", "HOVIYAT_CA_PASSPHRASE", "HOVIYAT_SMS_GATEWAY_TOKEN"):
        assert names_a_secret(secret), secret  # the check below would catch each
    for variable in settings_map():
        assert not names_a_secret(variable), variable
    assert "HOVIYAT_DATABASE_URL" not in settings_map()
    for spec in pod_specs().values():
        for container in containers(spec):
            for variable in container.get("env", []):
                assert "value" not in variable, variable["name"]


def test_attack_the_secret_shapes_hold_placeholders_only() -> None:
    """secrets.example.yaml documents names and keys; a real value must never be committed."""
    for name, data in secrets().items():
        for key, value in data.items():
            assert "REPLACE_ME" in value, (name, key)
            if key.endswith(".json"):
                assert set(json.loads(value).values()) == {"REPLACE_ME"}, name


def test_ca_keys_are_used_through_the_pkcs11_module_and_a_pin_file() -> None:
    spec = pod_specs()["Deployment"]
    container = server()
    assert settings_map()["HOVIYAT_CA_KEY_BACKEND"] == "pkcs11"
    module = settings_map()["HOVIYAT_CA_PKCS11_MODULE"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    module_mount = mounts[posixpath.dirname(module)]
    assert module_mount["readOnly"] is True
    # The init container fills the same volume the server mounts read-only.
    (init,) = spec["initContainers"]
    assert {m["name"] for m in init["volumeMounts"]} == {module_mount["name"]}
    name, key = mounted_file(container, spec, settings_map()["HOVIYAT_CA_PKCS11_PIN_FILE"])
    assert (name, key) == ("hoviyat-pkcs11", "pin")
    assert key in secrets()[name]
    assert "HOVIYAT_CA_PKCS11_PIN" not in settings_map()  # a file, never a variable


def test_the_data_folder_is_a_subfolder_of_a_writable_volume() -> None:
    """'serve' makes the data folder 0700: it must own it, and an emptyDir's root is root's."""
    data_dir = settings_map()["HOVIYAT_DATA_DIR"]
    for kind, spec in pod_specs().items():
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
        parent = posixpath.dirname(data_dir)
        assert data_dir not in mounts, kind
        assert "emptyDir" in volumes[mounts[parent]["name"]], kind
        assert "emptyDir" in volumes[mounts["/tmp"]["name"]], kind


def test_every_variable_is_a_real_setting_with_a_valid_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = set(settings_map()) | {
        variable["name"]
        for spec in pod_specs().values()
        for variable in spec["containers"][0]["env"]
    }
    assert unknown_settings(names) == set()
    values = settings_map() | {
        "HOVIYAT_DATABASE_URL": "postgresql+psycopg://hoviyat:x@db/hoviyat",
        "HOVIYAT_SMS_GATEWAY_TOKEN": "x",
    }
    accept_settings(values, monkeypatch)
    settings = Settings()
    assert settings.is_production
    assert settings.issuer.startswith("https://")


def test_attack_a_misspelled_setting_is_caught() -> None:
    """pydantic-settings ignores unknown variables: HOVIYAT_CA_KEY_BACKED=pkcs11 would leave
    the CA on file keys without a word, so the names are checked against the classes."""
    assert unknown_settings({"HOVIYAT_CA_KEY_BACKED", "HOVIYAT_MODE"}) == {"HOVIYAT_CA_KEY_BACKED"}


def test_the_job_runs_init_with_the_same_image_and_settings_as_the_server() -> None:
    job = one("Job")
    spec = pod_specs()["Job"]
    (container,) = spec["containers"]
    assert spec["restartPolicy"] == "Never"
    assert container["args"] == ["init", "--json"]
    assert container["image"] == server()["image"]
    assert container["envFrom"] == server()["envFrom"]
    assert job["spec"]["backoffLimit"] <= 3
    assert job["spec"]["activeDeadlineSeconds"] > 0


def test_service_and_budget_select_the_server_pods() -> None:
    deployment = one("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = one("Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    budget = one("PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # The Job's pods must not count towards the budget or receive traffic.
    job_labels = one("Job")["spec"]["template"]["metadata"]["labels"]
    assert not service["spec"]["selector"].items() <= job_labels.items()
    assert budget["spec"]["maxUnavailable"] < deployment["spec"]["replicas"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
