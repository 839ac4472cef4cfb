"""A course on a real JupyterHub: Unix accounts, one JupyterLab per person, nbgrader's exchange.

The hub runs ``docs/deploy/jupyterhub_config.py`` (the shipped one-machine recipe) on 127.0.0.1 with random
ports, a test authenticator and a service token; real Unix accounts (an instructor and two students, created
with ``useradd`` and removed afterwards) each get a JupyterLab started by ``LocalProcessSpawner`` as that
account. Everything goes through the hub's REST API and the users' servers behind the proxy, as people would:

* the instructor, in a kernel of their own server, generates and releases ps3 into the shared exchange;
* each student fetches it from the Assignments tab's endpoint, saves answers through the contents API (one
  fills every answer from the solution, one leaves them unanswered) and submits;
* the instructor collects, autogrades in the bubblewrap sandbox (``python -m course autograde --sandbox``),
  generates and releases feedback;
* each student fetches feedback and gets only their own; a student's attempts to read the other's work, the
  exchange inbound and the instructor's course (hidden tests, gradebook) fail with PermissionError;
* the instructor writes the class report (``python -m course report``) from that gradebook.

Skipped unless run as root with ``useradd``, ``configurable-http-proxy``, ``bwrap`` and ``jupyterhub`` installed,
except that ``EXPRESSION_LAB_REQUIRE_HUB=1`` (``.ci/run``) turns a missing piece into an error.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from conftest import REPO
from course.sample_submission import fill_answers

AID, NOTEBOOK = "ps3_iphonex_3dcnn", "iphonex_3dcnn.ipynb"
COURSE_ID = "expression-lab"  # docs/deploy/nbgrader_config.py
DEPLOY = REPO / "docs" / "deploy"
VENV = Path(sys.prefix)
#: The course checkout the instructor works in: the kit's tracked files these folders hold.
COURSE_FILES = (
    "nbgrader_config.py",
    "course/",
    "data_loaders/",
    "widgets/",
    f"solutions/{AID}/",
    f"assignments/{AID}/",
)


def hub_missing() -> str | None:
    """Why the hub test cannot run here (None when it can)."""
    if os.geteuid() != 0:
        return "not root (useradd and LocalProcessSpawner need root)"
    for tool in ("useradd", "userdel", "configurable-http-proxy", "git", "bwrap"):  # bwrap: sandboxed grading
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not (VENV / "bin" / "jupyterhub-singleuser").exists():
        return f"jupyterhub is not installed in {VENV}"
    return None


_missing = hub_missing()
if _missing and os.environ.get("EXPRESSION_LAB_REQUIRE_HUB") == "1":
    raise RuntimeError(f"hub test required (EXPRESSION_LAB_REQUIRE_HUB=1) but {_missing}")
needs_hub = [pytest.mark.slow, pytest.mark.hub, pytest.mark.skipif(bool(_missing), reason=str(_missing))]


def grade_class(server: UserServer, course: Path) -> str:
    """The instructor's autograde step: the kit's sandboxed autograde, two submissions at once."""
    return server.check(["python", "-m", "course", "autograde", AID, "--sandbox", "--jobs", "2"], cwd=course)


# ---------------------------------------------------------------------------------------------- plumbing


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unreachable_dirs(paths: list[Path]) -> list[Path]:
    """Folders on the way to ``paths`` that other users cannot pass through (no o+x)."""
    blocked = []
    for path in paths:
        for folder in [*reversed(path.resolve().parents)]:
            if not folder.stat().st_mode & stat.S_IXOTH and folder not in blocked:
                blocked.append(folder)
    return blocked


class UserServer:
    """One person's JupyterLab behind the hub's proxy, used with the test service's token."""

    def __init__(self, hub: Hub, user: str):
        self.hub, self.user = hub, user
        self.base = f"{hub.url}/user/{user}"
        self._kernel: str | None = None
        self._ws = None

    def request(self, method: str, path: str, **kwargs):
        import requests

        r = requests.request(method, f"{self.base}/{path}", headers=self.hub.headers, timeout=300, **kwargs)
        if r.status_code >= 400:
            raise AssertionError(f"{method} {path} as {self.user}: HTTP {r.status_code}: {r.text[:2000]}")
        return r

    def python(self, code: str, timeout: float = 600) -> str:
        """Run ``code`` in a kernel of this server (as this user); return what it printed.

        Raises:
            AssertionError: the code raised (the message holds the traceback).
        """
        import websocket

        if self._ws is None:
            self._kernel = self.request("POST", "api/kernels", json={"name": "python3"}).json()["id"]
            url = f"{self.base.replace('http', 'ws', 1)}/api/kernels/{self._kernel}/channels"
            self._ws = websocket.create_connection(url, header=[f"Authorization: token {self.hub.token}"])
        self._ws.settimeout(timeout)
        msg_id = uuid.uuid4().hex
        self._ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": self.user,
                        "session": uuid.uuid4().hex,
                        "version": "5.3",
                        "date": "",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "channel": "shell",
                    "buffers": [],
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                }
            )
        )
        out, error = [], None
        while True:
            msg = json.loads(self._ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                error = "\n".join(msg["content"]["traceback"])
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                break
        if error:
            raise AssertionError(f"code run as {self.user} raised:\n{error}")
        return "".join(out)

    def run(self, argv: list[str], cwd: Path | str = "~") -> tuple[int, str]:
        """Run a command as this user from a kernel of their server; (exit status, stdout + stderr)."""
        code = (
            f"import json, os, subprocess\n"
            f"p = subprocess.run({argv!r}, cwd=os.path.expanduser({str(cwd)!r}), capture_output=True, "
            f"text=True)\nprint(json.dumps([p.returncode, p.stdout + p.stderr]))"
        )
        rc, output = json.loads(self.python(code).strip().splitlines()[-1])
        return rc, output

    def check(self, argv: list[str], cwd: Path | str = "~") -> str:
        rc, output = self.run(argv, cwd)
        assert rc == 0, f"`{' '.join(argv)}` as {self.user} exited {rc}:\n{output[-4000:]}"
        return output

    def assignments(self, action: str) -> object:
        """POST the Assignments tab's action (fetch, submit, fetch_feedback) for ps3; its JSON answer."""
        r = self.request("POST", f"assignments/{action}", data={"course_id": COURSE_ID, "assignment_id": AID})
        answer = r.json()
        if isinstance(answer, dict) and answer.get("success") is False:
            raise AssertionError(f"{action} as {self.user} failed: {answer}")
        return answer

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()


class Hub:
    """A running JupyterHub (``docs/deploy/jupyterhub_config.py``) and the test's service token."""

    def __init__(self, root: Path, env_overrides: dict[str, str]):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(32)
        self.headers = {"Authorization": f"token {self.token}"}
        self.state = root / "hub"
        self.state.mkdir(mode=0o700)
        config = self.state / "jupyterhub_test_config.py"
        config.write_text(
            f"load_subconfig({str(DEPLOY / 'jupyterhub_config.py')!r})\n"
            "c = get_config()\n"
            "# The test logs nobody in: it creates users and starts servers with a service token.\n"
            "c.JupyterHub.authenticator_class = 'dummy'\n"
            "c.JupyterHub.services = [{'name': 'course-test', 'api_token': %r}]\n"
            "c.JupyterHub.load_roles = [{'name': 'course-test', 'services': ['course-test'],\n"
            "    'scopes': ['admin:users', 'admin:servers', 'access:servers']}]\n" % self.token
        )
        env = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TZ")}
        env.update(
            PATH=os.pathsep.join([str(VENV / "bin"), os.environ.get("PATH", "/usr/bin:/bin")]),
            EXPRESSION_LAB_VENV=str(VENV),
            EXPRESSION_LAB_HUB_STATE=str(self.state),
            EXPRESSION_LAB_HUB_URL=self.url,
            EXPRESSION_LAB_HUB_API_URL=f"http://127.0.0.1:{_free_port()}",
            EXPRESSION_LAB_PROXY_API_URL=f"http://127.0.0.1:{_free_port()}",
            **env_overrides,
        )
        self.log_path = self.state / "jupyterhub.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 (the hub writes it until stop())
        self.proc = subprocess.Popen(
            [str(VENV / "bin" / "jupyterhub"), "-f", str(config)],
            cwd=self.state,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait(lambda: self._get("hub/api").status_code == 200, 90, "the hub to answer")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _get(self, path: str):
        import requests

        return requests.get(f"{self.url}/{path}", headers=self.headers, timeout=30)

    def _wait(self, ready, seconds: float, what: str) -> None:
        import requests

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"jupyterhub exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                if ready():
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log_tail()}")

    def api(self, method: str, path: str, **kwargs):
        import requests

        r = requests.request(method, f"{self.url}/hub/api/{path}", headers=self.headers, timeout=60, **kwargs)
        if r.status_code >= 400:
            raise AssertionError(f"{method} hub/api/{path}: HTTP {r.status_code}: {r.text}\n{self.log_tail()}")
        return r

    def start_server(self, user: str) -> UserServer:
        """Create the hub user (a Unix account of that name must exist) and start their JupyterLab."""
        self.api("POST", f"users/{user}")
        self.api("POST", f"users/{user}/server")
        self._wait(
            lambda: self.api("GET", f"users/{user}").json()["servers"].get("", {}).get("ready"), 120, f"{user}'s server"
        )
        return UserServer(self, user)

    def stop(self) -> None:
        self.proc.terminate()  # the hub stops the users' servers and its proxy on the way out
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def _useradd(name: str) -> None:
    # Home folders private (0700): Debian's default (the umask) would let every user read every home.
    subprocess.run(
        ["useradd", "--create-home", "--key", "HOME_MODE=0700", "--shell", "/bin/bash", name],
        check=True,
        capture_output=True,
    )


def _userdel(name: str) -> None:
    # The hub stopped the account's server; give its processes a moment to exit, then end any left over
    # (only that throw-away account's), else userdel refuses.
    deadline = time.monotonic() + 15
    while subprocess.run(["pgrep", "-u", name], capture_output=True, check=False).returncode == 0:
        if time.monotonic() > deadline:
            subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True, check=False)
            time.sleep(1)
            break
        time.sleep(0.5)
    subprocess.run(["userdel", "--remove", name], capture_output=True, check=False)


def _copy_course(dest: Path) -> None:
    """The instructor's course checkout: the kit's course files plus the hub's nbgrader settings."""
    # What a clone of this checkout would hold (tracked files and new ones not ignored), not its grading/.
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", *COURSE_FILES],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for rel in tracked:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dest / rel)
    with open(dest / "nbgrader_config.py", "a") as f:
        f.write("\n\n# --- on the hub (docs/deploy/nbgrader_config.py) ---\n")
        f.write((DEPLOY / "nbgrader_config.py").read_text())


def _chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for p in [path, *path.rglob("*")]:
        os.chown(p, entry.pw_uid, entry.pw_gid)


# ---------------------------------------------------------------------------------------------- the course


@pytest.fixture(scope="module")
def hub_course():
    """The whole round trip on a live hub; yields what the tests inspect (the hub stays up for them)."""
    suffix = secrets.token_hex(3)
    users = {"instructor": f"elab-instructor-{suffix}", "good": f"elab-ada-{suffix}", "bad": f"elab-bob-{suffix}"}
    root = Path(tempfile.mkdtemp(prefix="expression-lab-hub-"))
    root.chmod(0o755)
    # Every user runs the kit's venv and imports the kit: folders on the way there that others cannot pass
    # (a Python under /root, say) get o+x (pass through, not list) for the test, restored afterwards.
    blocked = _unreachable_dirs([Path(os.path.realpath(sys.executable)), VENV / "bin", REPO])
    modes = {d: d.stat().st_mode for d in blocked}
    hub = None
    servers: dict[str, UserServer] = {}
    try:
        for d in blocked:
            d.chmod(modes[d] | stat.S_IXOTH)
        for name in users.values():
            _useradd(name)
        exchange = root / "exchange"
        exchange.mkdir()
        exchange.chmod(0o1777)  # nbgrader: everyone writes here; the sticky bit keeps others' files safe
        jupyter_config = root / "jupyter"
        jupyter_config.mkdir(mode=0o755)
        shutil.copy(DEPLOY / "nbgrader_config.py", jupyter_config / "nbgrader_config.py")
        course = root / "course"
        course.mkdir()
        _copy_course(course)
        _chown_tree(course, users["instructor"])
        course.chmod(0o700)

        # The administrator's one-time step: the sandboxed grading kernel's kernelspec, in the shared venv.
        subprocess.run(
            [sys.executable, "-m", "course", "sandbox", "install"],
            cwd=REPO,
            check=True,
            capture_output=True,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )
        hub = Hub(
            root,
            {
                "NBGRADER_EXCHANGE": str(exchange),
                "EXPRESSION_LAB_JUPYTER_CONFIG": str(jupyter_config),
                "EXPRESSION_LAB_KIT": str(REPO),
            },
        )
        servers = {role: hub.start_server(name) for role, name in users.items()}
        teacher, ada, bob = servers["instructor"], servers["good"], servers["bad"]

        # Instructor: generate (fills the gradebook with the source's cells) and release into the exchange.
        teacher.check(["python", "-m", "course", "release", AID], cwd=course)
        teacher.check(["nbgrader", "release_assignment", AID, "--force"], cwd=course)

        # Students: fetch from the Assignments tab, answer through the contents API, submit.
        fetched = f"{COURSE_ID}/{AID}/{NOTEBOOK}"
        for who, server in (("good", ada), ("bad", bob)):
            server.assignments("fetch")
            nb = server.request("GET", f"api/contents/{fetched}").json()["content"]
            if who == "good":
                release_copy = root / f"{who}-{NOTEBOOK}"
                release_copy.write_text(json.dumps(nb))
                nb = fill_answers(release_copy, REPO / "solutions" / AID / NOTEBOOK)
            server.request("PUT", f"api/contents/{fetched}", json={"type": "notebook", "format": "json", "content": nb})
            server.assignments("submit")

        # Instructor: collect, autograde, feedback.
        teacher.check(["nbgrader", "collect", AID], cwd=course)
        grade_class(teacher, course)
        teacher.check(["nbgrader", "generate_feedback", AID, "--force"], cwd=course)
        teacher.check(["nbgrader", "release_feedback", AID], cwd=course)

        for server in (ada, bob):
            server.assignments("fetch_feedback")
        # Instructor: the class report from the course's gradebook.
        teacher.check(["python", "-m", "course", "report", AID, "--out", "reports"], cwd=course)
        yield {"hub": hub, "servers": servers, "users": users, "course": course, "exchange": exchange, "root": root}
    finally:
        for server in servers.values():
            server.close()
        if hub is not None:
            hub.stop()
        for name in users.values():
            _userdel(name)
        for d, mode in modes.items():
            d.chmod(stat.S_IMODE(mode))
        shutil.rmtree(root, ignore_errors=True)


def _totals(course: Path) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'grading' / 'gradebook.db'}") as gb:
        return {s.student.id: s.score for s in gb.assignment_submissions(AID)}


def _hub(test):
    for mark in needs_hub:
        test = mark(test)
    return test


def _failed_tests(course: Path, student: str) -> dict[str, tuple[float, float]]:
    """Test cells of one submission that scored below their maximum: grade_id -> (score, max)."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'grading' / 'gradebook.db'}") as gb:
        return {
            g.name: (g.score, g.max_score)
            for nb in gb.find_submission(AID, student).notebooks
            for g in nb.grades
            if g.cell_type == "code" and g.score < g.max_score
        }


@_hub
def test_each_submission_is_graded_and_the_answered_one_scores_more(hub_course):
    course, users = hub_course["course"], hub_course["users"]
    totals = _totals(course)
    assert set(totals) == {users["good"], users["bad"]}, f"graded submissions: {totals}"
    assert totals[users["good"]] > totals[users["bad"]], f"scores: {totals}"
    # The answered notebook passes every test in the sandbox but the one that loads the handed-in
    # model_4.keras: this student saved answers without running the notebook, so handed in no model.
    assert set(_failed_tests(course, users["good"])) == {"test_model_4_saved"}, _failed_tests(course, users["good"])


@_hub
def test_each_student_fetches_only_their_own_feedback(hub_course):
    course, users = hub_course["course"], hub_course["users"]
    expected = {
        who: (course / "grading" / "feedback" / users[who] / AID / NOTEBOOK).with_suffix(".html")
        for who in ("good", "bad")
    }
    assert expected["good"].read_text() != expected["bad"].read_text()
    for who in ("good", "bad"):
        server = hub_course["servers"][who]
        folder = f"{COURSE_ID}/{AID}/feedback"
        stamps = [e["path"] for e in server.request("GET", f"api/contents/{folder}").json()["content"]]
        assert len(stamps) == 1, f"{users[who]} got feedback folders {stamps}"
        files = server.request("GET", f"api/contents/{stamps[0]}").json()["content"]
        assert [f["name"] for f in files] == [Path(NOTEBOOK).with_suffix(".html").name], files
        html = server.request("GET", f"api/contents/{files[0]['path']}", params={"format": "text"}).json()
        assert html["content"] == expected[who].read_text(), f"{users[who]} got feedback that is not theirs"


@_hub
def test_a_student_cannot_read_the_other_students_work_or_the_course(hub_course):
    course, users, exchange = hub_course["course"], hub_course["users"], hub_course["exchange"]
    ada_home = Path(pwd.getpwnam(users["good"]).pw_dir)
    attempts = {
        "list the exchange inbound": f"os.listdir({str(exchange / COURSE_ID / 'inbound')!r})",
        "read ada's notebook": f"open({str(ada_home / COURSE_ID / AID / NOTEBOOK)!r}).read()",
        "list ada's home": f"os.listdir({str(ada_home)!r})",
        "read ada's collected submission": f"open({str(course / 'grading' / 'submitted' / users['good'] / AID / NOTEBOOK)!r}).read()",
        "read the hidden tests": f"open({str(course / 'solutions' / AID / NOTEBOOK)!r}).read()",
        "read the gradebook": f"open({str(course / 'grading' / 'gradebook.db')!r}, 'rb').read()",
    }
    code = (
        "import json, os\nresult = {}\n"
        f"for what, expr in {attempts!r}.items():\n"
        "    try:\n        eval(expr)\n        result[what] = 'succeeded'\n"
        "    except Exception as err:\n        result[what] = type(err).__name__\n"
        "print(json.dumps(result))"
    )
    result = json.loads(hub_course["servers"]["bad"].python(code).strip().splitlines()[-1])
    assert result == {what: "PermissionError" for what in attempts}, f"as {users['bad']}: {result}"


@_hub
def test_the_class_report_matches_the_gradebook(hub_course):
    import pandas as pd

    course, users = hub_course["course"], hub_course["users"]
    table = pd.read_csv(course / "reports" / f"{AID}_canvas.csv", dtype={"ID": str})
    assert table.iloc[0]["Student"] == "Points Possible"
    graded = table.iloc[1:].set_index("SIS Login ID")[AID].to_dict()
    assert graded == pytest.approx(_totals(course)) and set(graded) == {users["good"], users["bad"]}
    page = (course / "reports" / f"{AID}_report.html").read_text()
    assert "test_voxelize_hidden" in page, "the report lists ps3's test cells"


def _load_nbgrader_config(path: Path, env: dict[str, str] | None = None):
    """Load an nbgrader_config.py with traitlets' own loader (as nbgrader does) and return its Config."""
    from traitlets.config.loader import PyFileConfigLoader

    old = dict(os.environ)
    try:
        os.environ.update(env or {})
        return PyFileConfigLoader(path.name, str(path.parent)).load_config()
    finally:
        os.environ.clear()
        os.environ.update(old)


@pytest.mark.slow  # loads both recipes with JupyterHub and nbgrader: seconds
def test_the_cluster_recipe_agrees_with_the_one_machine_recipe(tmp_path):
    """Fast: docs/deploy's Helm values, Kubernetes objects, image and nbgrader settings name the same things."""
    import yaml

    hub_wide = _load_nbgrader_config(DEPLOY / "nbgrader_config.py")
    exchange = hub_wide.Exchange.root
    assert hub_wide.Exchange.path_includes_course is True
    assert hub_wide.CourseDirectory.course_id == COURSE_ID
    assert _load_nbgrader_config(REPO / "nbgrader_config.py").CourseDirectory.course_id == COURSE_ID
    assert _load_nbgrader_config(DEPLOY / "nbgrader_config.py", {"NBGRADER_EXCHANGE": "/x"}).Exchange.root == "/x"

    values = yaml.safe_load((DEPLOY / "z2jh-values.yaml").read_text())
    objects = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all((DEPLOY / "grader.yaml").read_text())}
    user = values["singleuser"]
    (volume,), (mount,) = user["storage"]["extraVolumes"].values(), user["storage"]["extraVolumeMounts"].values()
    assert mount["mountPath"] == exchange == user["extraEnv"]["NBGRADER_EXCHANGE"]
    assert ("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]) in objects
    assert objects[("PersistentVolumeClaim", "nbgrader-exchange")]["spec"]["accessModes"] == ["ReadWriteMany"]

    pod = objects[("Deployment", "grader")]["spec"]["template"]["spec"]
    (grader,) = pod["containers"]
    assert grader["image"] == f"{user['image']['name']}:{user['image']['tag']}"
    assert {m["mountPath"] for m in grader["volumeMounts"]} >= {exchange}
    env = {e["name"]: e for e in grader["env"]}
    assert env["JUPYTERHUB_SERVICE_NAME"]["value"] in values["hub"]["services"]
    token = objects[("Secret", env["JUPYTERHUB_API_TOKEN"]["valueFrom"]["secretKeyRef"]["name"])]["stringData"]
    assert token["token"] == values["hub"]["services"]["grader"]["api_token"]
    assert "access:services!service=grader" in values["hub"]["loadRoles"]["graders"]["scopes"]

    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "COPY docs/deploy/nbgrader_config.py /etc/jupyter/nbgrader_config.py" in dockerfile
