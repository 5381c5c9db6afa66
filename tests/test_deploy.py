"""The deployment files: Dockerfile, systemd units, Kubernetes manifests.

CI has neither a Docker engine nor a running systemd. So the files are parsed and their
settings checked here (.ci/check-deploy.sh adds systemd-analyze and hadolint), and the image is
exercised without being built: the wheel goes into a fresh venv standing in for the image's
/opt/pruner, and the Dockerfile's ENTRYPOINT, CMD and HEALTHCHECK, and the CronJob's command,
run from it against the simulated API, with the image's ENV and its paths mapped to temp dirs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from pruner.config.load import parse_config
from pruner.errors import EXIT_USAGE
from pruner.ops.daemon import HEARTBEAT_INTERVAL
from pruner.ops.heartbeat import MAX_AGE
from pruner.sim import WRITE_TOKEN, Simulator, generate_fleet
from pruner.vpsbg.token import CREDENTIAL_NAME

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
SYSTEMD = ROOT / "systemd"
KUBERNETES = ROOT / "deploy" / "kubernetes"

API_TIMEOUT = timedelta(seconds=30)  # api.timeout's default
PROBE_TIMEOUT = timedelta(seconds=5)  # what orchestrators give `pruner health`
IMAGE_VENV = "/opt/pruner"
IMAGE_CONFIG_DIR = "/etc/pruner"
IMAGE_SECRETS = "/run/secrets"
IMAGE_STATE_DIR = "/var/lib/pruner"
SERVICES = ("pruner.service", "pruner-once.service", "pruner@.service")
DAEMON_SERVICES = ("pruner.service", "pruner@.service")


# --- Dockerfile -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined; comments and blank lines dropped."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not pending:
            start = number
        pending.append(line.removesuffix("\\").strip())
        if not line.endswith("\\"):
            keyword, _, arguments = " ".join(pending).partition(" ")
            instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
            pending = []
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def exec_form(instruction: Instruction, arguments: str | None = None) -> list[str]:
    text = instruction.arguments if arguments is None else arguments
    assert text.startswith("["), f"line {instruction.line}: {instruction.keyword} not exec form"
    command = json.loads(text)
    assert isinstance(command, list)
    assert all(isinstance(part, str) for part in command)
    return command


def only(stage: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in stage if i.keyword == keyword]
    assert len(found) == 1, f"{len(found)} {keyword} instructions in the stage"
    return found[0]


def env_of(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.arguments):
                key, equals, value = pair.partition("=")
                assert equals, f"line {instruction.line}: write ENV key=value"
                env[key] = value
    return env


@dataclass(frozen=True)
class Healthcheck:
    options: dict[str, str]
    command: list[str]


def healthcheck_of(stage: list[Instruction]) -> Healthcheck:
    instruction = only(stage, "HEALTHCHECK")
    options, _, command = instruction.arguments.partition("CMD ")
    pairs = (option.removeprefix("--").split("=", 1) for option in options.split())
    return Healthcheck(dict(pairs), exec_form(instruction, command.strip()))


def seconds(duration: str) -> float:
    """Docker's and systemd's simple durations: 5s, 90s, 2min, 1m30s, 3h."""
    units = {"h": 3600, "min": 60, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(ms|min|h|m|s)", duration)
    assert parts, f"not a duration: {duration!r}"
    assert "".join(n + u for n, u in parts) == duration.replace(" ", ""), duration
    return sum(float(number) * units[unit] for number, unit in parts)


@pytest.fixture(scope="module")
def runtime() -> list[Instruction]:
    """The last stage: what the image runs."""
    return stages(parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8")))[-1]


def test_dockerfile_builds_in_one_stage_and_runs_in_another() -> None:
    built = stages(parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8")))
    assert len(built) >= 2
    build_name = built[0][0].arguments.split()[-1]
    assert built[0][0].arguments.split()[-2].upper() == "AS"
    copies = [i.arguments.split() for i in built[-1] if i.keyword == "COPY"]
    assert [f"--from={build_name}", IMAGE_VENV, IMAGE_VENV] in copies


def test_dockerfile_runs_as_a_numeric_non_root_user(runtime: list[Instruction]) -> None:
    user = only(runtime, "USER").arguments
    assert re.fullmatch(r"\d+(:\d+)?", user), f"USER {user}: numeric, for runAsNonRoot"
    assert all(int(part) != 0 for part in user.split(":"))


def test_dockerfile_entrypoint_is_tini_in_exec_form(runtime: list[Instruction]) -> None:
    entrypoint = exec_form(only(runtime, "ENTRYPOINT"))
    assert Path(entrypoint[0]).name == "tini"
    assert entrypoint[1:] == ["--"]


def test_dockerfile_cmd_is_the_daemon_in_exec_form(runtime: list[Instruction]) -> None:
    assert exec_form(only(runtime, "CMD")) == ["pruner", "daemon"]


def test_dockerfile_healthcheck_is_pruner_health_within_the_probe_timeout(
    runtime: list[Instruction],
) -> None:
    check = healthcheck_of(runtime)
    assert check.command == ["pruner", "health"]
    assert seconds(check.options["timeout"]) <= PROBE_TIMEOUT.total_seconds()


def test_dockerfile_env_sets_config_token_and_unbuffered_output(
    runtime: list[Instruction],
) -> None:
    env = env_of(runtime)
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PRUNER_CONFIG"] == f"{IMAGE_CONFIG_DIR}/config.yaml"
    assert env["CREDENTIALS_DIRECTORY"] == IMAGE_SECRETS
    assert env["PATH"].startswith(f"{IMAGE_VENV}/bin:")


def test_dockerfile_state_dir_is_the_configs_default(runtime: list[Instruction]) -> None:
    default = parse_config("policies:\n  - name: all\n    keep_daily: 7\n").state_dir
    assert str(default) == IMAGE_STATE_DIR
    assert exec_form(only(runtime, "VOLUME")) == [IMAGE_STATE_DIR]


def test_dockerignore_admits_only_what_the_build_copies() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", "an allowlist: nothing enters the build context by default"
    admitted = {p.removeprefix("!").rstrip("/") for p in patterns if p.startswith("!")}
    build = stages(parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8")))[0]
    copied = {
        Path(source).as_posix()
        for i in build
        if i.keyword == "COPY" and "--from" not in i.arguments
        for source in i.arguments.split()[:-1]
    }
    assert copied == admitted


# --- systemd units ----------------------------------------------------------------------------

Unit = dict[str, list[tuple[str, str]]]


def parse_unit(path: Path) -> Unit:
    """Sections of (key, value) in order: systemd allows a key more than once."""
    unit: Unit = {}
    section: list[tuple[str, str]] | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = unit.setdefault(line.strip("[]"), [])
            continue
        assert section is not None, f"{path.name}: a setting before any section"
        key, equals, value = line.partition("=")
        assert equals, f"{path.name}: {line!r} is not key=value"
        section.append((key.strip(), value.strip()))
    return unit


def setting(unit: Unit, section: str, key: str) -> str:
    values = [v for k, v in unit.get(section, []) if k == key]
    assert len(values) == 1, f"[{section}] {key}= appears {len(values)} times"
    return values[0]


def sandbox(unit: Unit) -> list[tuple[str, str]]:
    """The hardening settings: everything in [Service] from DynamicUser= on."""
    service = unit["Service"]
    start = [key for key, _ in service].index("DynamicUser")
    return service[start:]


@pytest.fixture(scope="module")
def units() -> dict[str, Unit]:
    return {path.name: parse_unit(path) for path in sorted(SYSTEMD.iterdir())}


def test_systemd_ships_the_daemon_the_one_shot_its_timer_and_the_template(
    units: dict[str, Unit],
) -> None:
    assert sorted(units) == sorted([*SERVICES, "pruner.timer"])


@pytest.mark.parametrize("name", SERVICES)
def test_systemd_service_is_sandboxed(units: dict[str, Unit], name: str) -> None:
    unit = units[name]
    expected = {
        "DynamicUser": "yes",
        "CapabilityBoundingSet": "",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "RestrictNamespaces": "yes",
        "LockPersonality": "yes",
        "SystemCallArchitectures": "native",
        "UMask": "0077",
    }
    for key, value in expected.items():
        assert setting(unit, "Service", key) == value, key
    filters = [v for k, v in unit["Service"] if k == "SystemCallFilter"]
    assert filters[0] == "@system-service"


def test_systemd_services_share_one_sandbox(units: dict[str, Unit]) -> None:
    reference = sandbox(units["pruner.service"])
    for name in SERVICES:
        assert sandbox(units[name]) == reference, f"{name} drifted from pruner.service"


@pytest.mark.parametrize("name", SERVICES)
def test_systemd_service_stops_slower_than_a_request(units: dict[str, Unit], name: str) -> None:
    timeout = seconds(setting(units[name], "Service", "TimeoutStopSec"))
    assert timeout > API_TIMEOUT.total_seconds() * 2


@pytest.mark.parametrize("name", SERVICES)
def test_systemd_service_reads_the_token_as_a_credential(units: dict[str, Unit], name: str) -> None:
    credential, _, source = setting(units[name], "Service", "LoadCredential").partition(":")
    assert credential == CREDENTIAL_NAME
    assert source.startswith(f"{IMAGE_CONFIG_DIR}/")


@pytest.mark.parametrize("name", DAEMON_SERVICES)
def test_systemd_daemon_notifies_and_is_watched(units: dict[str, Unit], name: str) -> None:
    unit = units[name]
    assert setting(unit, "Service", "Type") == "notify"
    watchdog = seconds(setting(unit, "Service", "WatchdogSec"))
    assert watchdog >= HEARTBEAT_INTERVAL.total_seconds() * 2
    assert watchdog <= MAX_AGE.total_seconds()
    assert shlex.split(setting(unit, "Service", "ExecStart"))[-1] == "daemon"


@pytest.mark.parametrize("name", DAEMON_SERVICES)
def test_systemd_daemon_restarts_on_failure_but_not_for_a_config_mistake(
    units: dict[str, Unit], name: str
) -> None:
    assert setting(units[name], "Service", "Restart") == "on-failure"
    assert setting(units[name], "Service", "RestartPreventExitStatus") == str(EXIT_USAGE)


@pytest.mark.parametrize("name", DAEMON_SERVICES)
def test_systemd_daemon_reloads_on_sighup(units: dict[str, Unit], name: str) -> None:
    # `systemctl reload` runs ExecReload= with $MAINPID set: it must send the daemon SIGHUP
    # (which reloads its config and token) with nothing but what every Debian has: /bin/sh.
    # /bin/kill comes with procps, which a minimal system lacks.
    command = shlex.split(setting(units[name], "Service", "ExecReload").replace("$$", "$"))
    assert command[0] == "/bin/sh"
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time\n"
            "signal.signal(signal.SIGHUP, lambda *_: sys.exit(7))\n"
            "print('ready', flush=True)\n"
            "time.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as daemon:
        try:
            assert daemon.stdout is not None
            assert daemon.stdout.readline() == "ready\n"
            subprocess.run(command, env={"MAINPID": str(daemon.pid)}, check=True, timeout=10)
            assert daemon.wait(timeout=10) == 7
        finally:
            daemon.kill()


def test_systemd_daemon_uses_the_default_state_and_config(units: dict[str, Unit]) -> None:
    unit = units["pruner.service"]
    assert setting(unit, "Service", "StateDirectory") == "pruner"
    assert setting(unit, "Service", "ConfigurationDirectory") == "pruner"
    command = shlex.split(setting(unit, "Service", "ExecStart"))
    assert command[command.index("--config") + 1] == "%E/pruner/config.yaml"


def test_systemd_template_has_its_own_config_state_and_credential(
    units: dict[str, Unit],
) -> None:
    unit = units["pruner@.service"]
    command = shlex.split(setting(unit, "Service", "ExecStart"))
    assert command[command.index("--config") + 1] == "%E/pruner/%i.yaml"
    assert setting(unit, "Service", "StateDirectory") == "pruner-%i"
    assert "%i" in setting(unit, "Service", "LoadCredential").partition(":")[2]


def test_systemd_template_state_is_beside_the_daemons_not_inside_it(
    units: dict[str, Unit],
) -> None:
    """An account's daemon and the default one may share a host. With DynamicUser=, a unit's
    state directory is a symlink into /var/lib/private, so one nested in another's cannot be
    made: whichever starts second fails with 238/STATE_DIRECTORY (seen under systemd 252)."""
    default = PurePosixPath(setting(units["pruner.service"], "Service", "StateDirectory"))
    account = PurePosixPath(
        setting(units["pruner@.service"], "Service", "StateDirectory").replace("%i", "acme")
    )
    assert not account.is_relative_to(default)
    assert not default.is_relative_to(account)


def test_systemd_timer_runs_the_one_shot_and_catches_up(units: dict[str, Unit]) -> None:
    timer = units["pruner.timer"]
    assert setting(timer, "Timer", "Unit") == "pruner-once.service"
    assert setting(timer, "Timer", "Persistent") == "true"
    assert setting(timer, "Timer", "OnCalendar")
    assert seconds(setting(timer, "Timer", "RandomizedDelaySec")) > 0
    once = units["pruner-once.service"]
    assert setting(once, "Service", "Type") == "oneshot"
    assert shlex.split(setting(once, "Service", "ExecStart"))[-1] == "run"


# --- Kubernetes -------------------------------------------------------------------------------


def manifest(name: str) -> dict[str, Any]:
    documents = list(yaml.safe_load_all((KUBERNETES / name).read_text(encoding="utf-8")))
    assert len(documents) == 1
    document: dict[str, Any] = documents[0]
    return document


def pod_spec(document: dict[str, Any]) -> dict[str, Any]:
    spec = document["spec"]
    if document["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    result: dict[str, Any] = spec["template"]["spec"]
    return result


def container(document: dict[str, Any]) -> dict[str, Any]:
    (only_container,) = pod_spec(document)["containers"]
    result: dict[str, Any] = only_container
    return result


WORKLOADS = ("cronjob.yaml", "deployment.yaml")


def test_kubernetes_manifests_parse_as_the_kinds_they_name() -> None:
    kinds = {path.name: manifest(path.name)["kind"] for path in KUBERNETES.glob("*.yaml")}
    assert kinds == {
        "configmap.yaml": "ConfigMap",
        "cronjob.yaml": "CronJob",
        "deployment.yaml": "Deployment",
        "kustomization.yaml": "Kustomization",
        "pvc.yaml": "PersistentVolumeClaim",
        "secret.example.yaml": "Secret",
    }


def test_kubernetes_cronjob_runs_one_pass_at_a_time_without_retries() -> None:
    cronjob = manifest("cronjob.yaml")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert cronjob["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0
    assert pod_spec(cronjob)["restartPolicy"] == "Never"
    assert container(cronjob)["args"] == ["pruner", "run"]


def test_kubernetes_deployment_runs_one_daemon_never_two(runtime: list[Instruction]) -> None:
    deployment = manifest("deployment.yaml")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert container(deployment)["args"] == exec_form(only(runtime, "CMD"))


def test_kubernetes_deployment_liveness_is_the_images_healthcheck(
    runtime: list[Instruction],
) -> None:
    probe = container(manifest("deployment.yaml"))["livenessProbe"]
    assert probe["exec"]["command"] == healthcheck_of(runtime).command
    assert probe["timeoutSeconds"] == PROBE_TIMEOUT.total_seconds()


@pytest.mark.parametrize("name", WORKLOADS)
def test_kubernetes_workload_is_locked_down(name: str, runtime: list[Instruction]) -> None:
    document = manifest(name)
    pod = pod_spec(document)
    uid = int(only(runtime, "USER").arguments.split(":")[0])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == uid
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert pod["terminationGracePeriodSeconds"] > API_TIMEOUT.total_seconds() * 2
    security = container(document)["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    resources = container(document)["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


@pytest.mark.parametrize("name", WORKLOADS)
def test_kubernetes_workload_mounts_config_token_and_state_where_the_image_reads_them(
    name: str,
) -> None:
    document = manifest(name)
    volumes = {volume["name"]: volume for volume in pod_spec(document)["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container(document)["volumeMounts"]}
    assert (
        mounts[IMAGE_CONFIG_DIR]["configMap"]["name"]
        == manifest("configmap.yaml")["metadata"]["name"]
    )
    assert (
        mounts[IMAGE_SECRETS]["secret"]["secretName"]
        == manifest("secret.example.yaml")["metadata"]["name"]
    )
    # The state outlives the pod: on an emptyDir, the audit trail of every deletion would not.
    state = {key: value for key, value in mounts[IMAGE_STATE_DIR].items() if key != "name"}
    assert state == {
        "persistentVolumeClaim": {"claimName": manifest("pvc.yaml")["metadata"]["name"]}
    }
    read_only = {m["mountPath"] for m in container(document)["volumeMounts"] if m.get("readOnly")}
    assert read_only == {IMAGE_CONFIG_DIR, IMAGE_SECRETS}


def test_kubernetes_secret_holds_the_credential_the_image_reads() -> None:
    assert list(manifest("secret.example.yaml")["stringData"]) == [CREDENTIAL_NAME]


def test_kubernetes_configmap_holds_a_valid_config_for_the_mounted_state() -> None:
    config = parse_config(manifest("configmap.yaml")["data"]["config.yaml"])
    assert str(config.state_dir) == IMAGE_STATE_DIR
    assert config.dry_run is True
    assert config.api.timeout <= API_TIMEOUT


def test_kubernetes_kustomization_deploys_the_cronjob_or_the_deployment_not_both() -> None:
    resources = manifest("kustomization.yaml")["resources"]
    assert all((KUBERNETES / name).is_file() for name in resources)
    assert len(set(resources) & set(WORKLOADS)) == 1
    assert "secret.example.yaml" not in resources


def test_kubernetes_kustomization_deploys_the_state_claim() -> None:
    assert "pvc.yaml" in manifest("kustomization.yaml")["resources"]


def test_kubernetes_state_claim_is_one_writer_volume_with_room() -> None:
    spec = manifest("pvc.yaml")["spec"]
    # One pass at a time (Forbid, Recreate): a volume one node mounts is enough, and the
    # common one that every storage class offers.
    assert spec["accessModes"] == ["ReadWriteOnce"]
    storage = spec["resources"]["requests"]["storage"]
    assert re.fullmatch(r"[1-9]\d*Gi", storage), storage


# --- the image's commands, run from the wheel -------------------------------------------------


@dataclass(frozen=True)
class Image:
    """The runtime stage, run here: a venv for /opt/pruner, temp dirs for the image's paths."""

    entrypoint: list[str]
    cmd: list[str]
    healthcheck: Healthcheck
    env: dict[str, str]
    workdir: Path
    paths: dict[str, Path]

    def run(self, command: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.entrypoint, *command],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def healthy(self) -> subprocess.CompletedProcess[str]:
        """The HEALTHCHECK, as Docker runs it: in the container but not through the
        ENTRYPOINT, killed after --timeout."""
        return subprocess.run(
            self.healthcheck.command,
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=seconds(self.healthcheck.options["timeout"]),
            check=False,
        )


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's /opt/pruner: the wheel, installed without network into a fresh venv whose
    dependencies are this test run's (a .pth file: no copy, no download)."""
    work = tmp_path_factory.mktemp("image")
    wheels = work / "wheels"
    _pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(wheels), str(ROOT))
    (wheel,) = wheels.glob("pruner-*.whl")
    venv = work / "opt-pruner"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    _pip("--python", str(venv / "bin" / "python"), "install", "--no-deps", str(wheel))
    site = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (Path(site) / "test-dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    return venv


def _pip(*args: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--disable-pip-version-check",
            "--no-input",
            *args,
            "--no-index",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, (
        f"pip {args[0]} failed (building the wheel needs hatchling in the test environment):\n"
        f"{result.stdout[-1500:]}{result.stderr[-1500:]}"
    )


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    fleet = generate_fleet(now=datetime.now(UTC), servers=4, days=20, seed=5)
    with Simulator(fleet, seed=5) as running:
        yield running
    assert not running.errors


@pytest.fixture
def image(
    image_venv: Path, runtime: list[Instruction], tmp_path: Path, simulator: Simulator
) -> Image:
    paths = {
        IMAGE_VENV: image_venv,
        IMAGE_CONFIG_DIR: tmp_path / "etc-pruner",
        IMAGE_SECRETS: tmp_path / "run-secrets",
        IMAGE_STATE_DIR: tmp_path / "var-lib-pruner",
    }
    for path in paths.values():
        path.mkdir(exist_ok=True)
    (paths[IMAGE_SECRETS] / CREDENTIAL_NAME).write_text(WRITE_TOKEN + "\n")
    config = {
        "api": {"base_url": simulator.base_url, "timeout": "5s", "retries": 2, "backoff": "0.01s"},
        "dry_run": False,
        "state_dir": IMAGE_STATE_DIR,
        "schedule": {"interval": "1h", "run_on_start": True},
        "metrics": {"listen": "127.0.0.1:0"},  # not the default port: suites run side by side
        "safety": {"max_delete_fraction": 1.0, "max_deletions_per_run": None, "stale_after": None},
        "policies": [{"name": "all", "keep_last": 2}],
    }
    text = _mapped(yaml.safe_dump(config), paths)
    (paths[IMAGE_CONFIG_DIR] / "config.yaml").write_text(text)
    entrypoint = exec_form(only(runtime, "ENTRYPOINT"))
    if not Path(entrypoint[0]).exists():  # no tini here (.ci/check-deploy.sh installs it)
        entrypoint = []
    return Image(
        entrypoint=entrypoint,
        cmd=[_mapped(part, paths) for part in exec_form(only(runtime, "CMD"))],
        healthcheck=healthcheck_of(runtime),
        env=_image_env(env_of(runtime), paths),
        workdir=Path(_mapped(only(runtime, "WORKDIR").arguments, paths)),
        paths=paths,
    )


def _mapped(text: str, paths: Mapping[str, Path]) -> str:
    for image_path in sorted(paths, key=len, reverse=True):
        text = text.replace(image_path, str(paths[image_path]))
    return text


def _image_env(image_env: Mapping[str, str], paths: Mapping[str, Path]) -> dict[str, str]:
    """The host's environment without anything pruner reads, plus the image's ENV."""
    dropped = {"VPSBG_API_TOKEN", "PRUNER_CONFIG", "CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET"}
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in dropped and not key.upper().endswith("_PROXY") and key != "PYTHONPATH"
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["TINI_SUBREAPER"] = "1"  # tini is PID 1 in a container; here it reaps as a subreaper
    for key, value in image_env.items():
        expanded = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)
        env[key] = _mapped(expanded, paths)
    return env


def test_image_runs_pruner_from_the_wheel_not_the_source_tree(image: Image) -> None:
    result = image.run(["python", "-c", "import pruner; print(pruner.__file__)"])
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).is_relative_to(image.paths[IMAGE_VENV])


def test_image_healthcheck_is_unhealthy_before_the_daemon_beats(image: Image) -> None:
    result = image.healthy()
    assert result.returncode == 1
    assert result.stderr.startswith("pruner: unhealthy: no heartbeat at ")


def test_image_cronjob_command_runs_a_pass_with_the_mounted_secret(
    image: Image, simulator: Simulator
) -> None:
    result = image.run(container(manifest("cronjob.yaml"))["args"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert simulator.deleted
    assert WRITE_TOKEN not in result.stdout + result.stderr


def test_image_cmd_runs_the_daemon_that_the_healthcheck_finds_alive(
    image: Image, simulator: Simulator, tmp_path: Path
) -> None:
    log = tmp_path / "daemon.log"
    with log.open("w") as stderr:
        daemon = subprocess.Popen(
            [*image.entrypoint, *image.cmd],
            env=image.env,
            cwd=image.workdir,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
    try:
        health = _first_healthy(image, daemon, attempts=20)
        assert health.returncode == 0, f"{health.stderr}\ndaemon log:\n{log.read_text()[-3000:]}"
        assert health.stdout.startswith("healthy: heartbeat ")
        daemon.send_signal(signal.SIGTERM)  # `docker stop`: to tini, which forwards it
        assert daemon.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert WRITE_TOKEN not in log.read_text()


def test_image_daemon_reloads_its_config_on_sighup_to_pid_1(image: Image, tmp_path: Path) -> None:
    log = tmp_path / "daemon.log"
    with log.open("w") as stderr:
        daemon = subprocess.Popen(
            [*image.entrypoint, *image.cmd],
            env=image.env,
            cwd=image.workdir,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
    try:
        health = _first_healthy(image, daemon, attempts=20)  # signals are handled by then
        assert health.returncode == 0, f"{health.stderr}\ndaemon log:\n{log.read_text()[-3000:]}"
        config = image.paths[IMAGE_CONFIG_DIR] / "config.yaml"
        config.write_text(config.read_text().replace("keep_last: 2", "keep_last: 3"))
        daemon.send_signal(signal.SIGHUP)  # `docker kill --signal HUP`: to tini, PID 1
        reloaded = _first_event(log, daemon, "config.reloaded", attempts=40)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert reloaded["changed"] == ["policies[0].keep_last"]


def _first_event(
    log: Path, daemon: subprocess.Popen[str], event: str, attempts: int
) -> dict[str, Any]:
    """The first `event` line of the daemon's JSON log, once written; waiting on the daemon
    between reads doubles as noticing that it died."""
    for _ in range(attempts):
        for line in log.read_text().splitlines():
            entry = json.loads(line) if line.startswith("{") else {}
            if entry.get("event") == event:
                return entry
        try:
            code = daemon.wait(timeout=0.25)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"the daemon exited {code} before logging {event}:\n{log.read_text()}")
    pytest.fail(f"no {event} in the daemon's log:\n{log.read_text()[-3000:]}")


def _first_healthy(
    image: Image, daemon: subprocess.Popen[str], attempts: int
) -> subprocess.CompletedProcess[str]:
    """Probe like Docker's start period: until healthy, the daemon exits, or attempts run out.
    Between probes, waiting on the daemon doubles as noticing that it died."""
    for _ in range(attempts):
        result = image.healthy()
        if result.returncode != 1:  # 0 healthy; Docker reserves 2, and more is no verdict
            return result
        try:
            code = daemon.wait(timeout=0.25)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"the daemon exited {code} before the healthcheck passed")
    return result


def test_the_kubernetes_image_tag_is_the_package_version() -> None:
    # One version source: pyproject.toml. The manifests deploy the image of that version.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text(encoding="utf-8"))
    assert [image["newTag"] for image in kustomization["images"]] == [project["version"]]
