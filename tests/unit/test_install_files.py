"""The install files work as written (issue 17 §6, §7): crontab, systemd units, Kubernetes, Dockerfile."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CRON = REPO / "cron"
VALUE_OPTIONS = {"--log-format", "--wait-lock", "--config"}


def cron_lines() -> list[tuple[str, str]]:
    """(five time fields, command) of each job line."""
    out = []
    for line in (CRON / "crontab.example").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        fields = line.split(None, 5)
        out.append((" ".join(fields[:5]), fields[5]))
    return out


def job_of(command: str) -> str:
    words = shlex.split(command[command.index("magsit "):].split(">>")[0].split("||")[0])[1:]
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in VALUE_OPTIONS:
            skip = True
        elif not word.startswith("-"):
            return word
    raise AssertionError(f"no command in {command!r}")


def fire_minutes(spec: str, days: int = 3) -> set[datetime]:
    from magsit.schedule import parse_trigger

    trigger = parse_trigger(spec)
    start = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
    moments, previous, now = set(), None, start
    while now < start + timedelta(days=days):
        moment = trigger.get_next_fire_time(previous, now)
        if moment is None or moment >= start + timedelta(days=days):
            break
        moments.add(moment.replace(second=0))
        previous, now = moment, moment + timedelta(seconds=1)
    return moments


def test_no_two_schedules_of_one_job_fire_in_the_same_minute():
    from magsit.events.drain import JOB as EVENTS_JOB
    from magsit.jobs import REGISTRY

    by_job: dict[str, list[str]] = {}
    for spec, command in cron_lines():
        if job_of(command) in [*REGISTRY, EVENTS_JOB]:  # jobs with a lock (`status` has none)
            by_job.setdefault(job_of(command), []).append(spec)
    assert len(by_job["sync-stock"]) == 2  # the 5-minute run and the nightly --full
    for job, specs in by_job.items():
        seen: set[datetime] = set()
        for spec in specs:
            moments = fire_minutes(spec)
            assert not moments & seen, f"{job}: schedule {spec!r} fires in the same minute as another of its lines"
            seen |= moments


def test_nightly_full_run_waits_for_the_lock_instead_of_being_skipped():
    [full] = [command for _spec, command in cron_lines() if "sync-stock --full" in command]
    assert re.search(r"--wait-lock \d+", full)


def test_directories_the_lines_write_to_are_created_by_the_install_steps():
    text = (CRON / "crontab.example").read_text()
    created = set()
    for line in text.splitlines():
        if "install -d" in line:
            created |= {word.rstrip("/") for word in line.split("#", 2)[1].split() if word.startswith("/")}
    for _spec, command in cron_lines():
        for path in re.findall(r"(/var/(?:log|lib)/magsit[^\s\"]*)", command):
            folder = str(Path(path).parent) if "." in Path(path).name or path.endswith(".log") else path
            assert any(folder == c or folder.startswith(c + "/") or Path(folder).parent == Path(c) for c in created), (
                f"{path}: its folder is not created by the install steps ({sorted(created)})"
            )


def test_monthly_reconcile_writes_html_and_csv_for_finance_and_the_month_expression_works():
    [line] = [command for _spec, command in cron_lines() if job_of(command) == "reconcile"]
    assert "--html" in line and "--csv" in line and "/var/lib/magsit/reports" in line
    expression = line.split(" && ")[0].replace("\\%", "%")
    result = subprocess.run(["/bin/sh", "-c", f"{expression} && echo $m"], capture_output=True, text=True)
    assert result.returncode == 0 and re.fullmatch(r"\d{4}-\d\d\n", result.stdout), result.stderr


def test_mailto_matches_the_comments():
    text = (CRON / "crontab.example").read_text()
    mailto = re.search(r"^MAILTO=(.*)$", text, re.M).group(1).strip('"')
    assert mailto and "@" in mailto  # the comments promise a mail when a job is stale
    stale = [command for _spec, command in cron_lines() if "--max-age" in command]
    # the line that mails must print when stale: its last command is not sent to /dev/null
    assert stale and any(not command.rstrip().endswith("2>&1") for command in stale)


def test_systemd_units_name_only_documentation_that_is_shipped():
    for unit in CRON.glob("*.service"):
        for doc in re.findall(r"^Documentation=(.*)$", unit.read_text(), re.M):
            for target in doc.split():
                assert not target.startswith("man:"), f"{unit.name}: {target} names a man page magsit does not ship"
                if target.startswith("file:///opt/magsit/"):
                    assert (REPO / target.removeprefix("file:///opt/magsit/")).exists(), f"{unit.name}: {target}"


def k8s_pod_specs() -> list[dict]:
    import yaml

    docs = [d for d in yaml.safe_load_all((CRON / "k8s-cronjob.yaml").read_text()) if d]
    return [d["spec"]["jobTemplate"]["spec"]["template"]["spec"] for d in docs if d["kind"] == "CronJob"]


def test_k8s_pods_are_placed_on_one_node_as_the_comment_promises():
    for pod in k8s_pod_specs():
        [term] = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert term["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": "magsit"}


def test_dockerfile_builds_the_image_the_manifest_runs_as_its_non_root_user():
    text = (REPO / "Dockerfile").read_text()
    user = re.findall(r"^USER (\d+)(?::(\d+))?$", text, re.M)
    assert user and user[-1][0] != "0"
    for pod in k8s_pod_specs():
        assert str(pod["securityContext"]["runAsUser"]) == user[-1][0]
        assert str(pod["securityContext"]["runAsGroup"]) == user[-1][1]
        image = pod["containers"][0]["image"]
        assert image.startswith("registry.example.com/magsit:") and image.split(":")[-1] in text
    assert "pip install" in text and "venv" in text  # the README's install
    assert re.search(r'^ENTRYPOINT \["magsit"\]', text, re.M)


def _builder() -> str | None:
    for tool in ("docker", "podman"):
        if shutil.which(tool) and subprocess.run([tool, "info"], capture_output=True, timeout=30).returncode == 0:
            return tool
    return None


@pytest.mark.skipif(_builder() is None, reason="no working container builder (docker/podman daemon) on this machine")
def test_dockerfile_builds_and_the_image_runs_magsit_as_non_root():
    tool = _builder()
    tag = "magsit-test:ci"
    build = subprocess.run([tool, "build", "-q", "-t", tag, str(REPO)], capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, build.stderr
    try:
        version = subprocess.run([tool, "run", "--rm", "--read-only", tag, "--version"], capture_output=True, text=True, timeout=120)
        assert version.returncode == 0 and "magsit" in version.stdout, version.stderr
        who = subprocess.run([tool, "run", "--rm", "--entrypoint", "id", tag, "-u"], capture_output=True, text=True, timeout=120)
        assert who.stdout.strip() == "10001"
    finally:
        subprocess.run([tool, "rmi", "-f", tag], capture_output=True, timeout=120)
