"""The grader runs strangers' programs (tests/labs/contain.py): a student without root
grades from their own directory with nothing installed but python3 and pytest; a
fork bomb, a server that writes outside its directory, and one that ignores every
stop signal lose their marks and harm nothing; and no process is left behind."""
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "docs" / "labs" / "solutions"
sys.path[:0] = [str(ROOT / "tests" / "labs")]
from course import GRADER_FILES  # noqa: E402

ROOT_USER = os.geteuid() == 0


def readable_dir():
    """A new directory under /tmp that every user may enter (pytest's tmp_path may be mode 0700, and
    so may the clone): what an unprivileged process must read goes there. The caller removes it."""
    place = pathlib.Path(tempfile.mkdtemp(prefix="serverlab-grader-test-"))
    place.chmod(0o755)
    return place


def server_dir(parent, body, name="server.py"):
    """A student's directory: protocol.py, and `name` running `body` after listener()."""
    place = parent / "student"
    place.mkdir()
    shutil.copy(SOLUTIONS / "protocol.py", place / "protocol.py")
    (place / name).write_text(textwrap.dedent("""\
        import os, signal, socket, sys, time
        from protocol import listener, serve
        sock, _ = listener()
        """) + textwrap.dedent(body))
    return place


def grade(lab, *command, cwd, options=(), timeout=180):
    done = subprocess.run([sys.executable, ROOT / "tests" / "labs" / "grade.py", lab, "--json", "--cwd", str(cwd),
                           *options, "--", *command], capture_output=True, text=True, timeout=timeout)
    try:
        return done.returncode, json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"the grader printed no verdict:\n{done.stdout}\n{done.stderr}")


def processes_with(marker):
    found = []
    for p in os.listdir("/proc"):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(p))
        except (OSError, ValueError):
            pass
    return found


def test_a_student_without_root_grades_from_their_own_directory_and_nothing_is_installed():
    # The grader's files alone (what the Gradescope bundle holds), where an unprivileged user can read
    # them; apt-get and sudo are stubs that record a call. As root, the grading runs as nobody.
    place = readable_dir()
    try:
        toolkit, student, stubs = place / "serverlab", place / "student", place / "bin"
        for name in GRADER_FILES:
            (toolkit / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, toolkit / name)
        student.mkdir()
        for name in ("iterative.py", "protocol.py"):
            shutil.copy(SOLUTIONS / name, student / name)
        stubs.mkdir()
        calls = place / "calls"
        for stub in ("apt-get", "sudo"):
            (stubs / stub).write_text(f"#!/bin/sh\necho {stub} \"$@\" >> {calls}\nexit 1\n")
            (stubs / stub).chmod(0o755)
        command = [str(toolkit / "lab"), "grade", "single", "--", "python3", "iterative.py", "--port", "{port}"]
        if ROOT_USER:
            shutil.chown(student, "nobody")
            calls.touch()
            calls.chmod(0o666)
            command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]
        env = dict(os.environ, PATH=f"{stubs}:/usr/bin:/bin", HOME=str(student))
        done = subprocess.run(command, cwd=student, env=env, capture_output=True, text=True, timeout=180)
        said = f"{done.stdout}{done.stderr}"
        assert done.returncode == 0 and "70 of 70 points" in said and "runs as you" in said, \
            f"`./lab grade single` as {'nobody' if ROOT_USER else 'this user'} should pass iterative.py:\n{said}"
        assert not calls.exists() or not calls.read_text(), f"./lab grade ran {calls.read_text()}"
    finally:
        shutil.rmtree(place, ignore_errors=True)


def test_a_fork_bomb_is_bounded_by_the_process_limit_and_leaves_nothing(tmp_path):
    # Bounded twice: the bomb itself stops at 1000 forks, should the limit not hold.
    marker = f"bomb_{os.getpid()}_{time.monotonic_ns()}.py"
    place = server_dir(tmp_path, """
        if os.fork() == 0:  # beside the server: forks until the kernel refuses
            for _ in range(1000):
                try:
                    if os.fork() == 0:
                        time.sleep(120)
                        os._exit(0)
                except OSError:
                    break
            time.sleep(120)
            os._exit(0)
        while True:
            serve(sock.accept()[0])
        """, name=marker)
    peak, grading = [0], [True]

    def watch():
        while grading[0]:
            peak[0] = max(peak[0], len(processes_with(marker)))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        rc, verdict = grade("single", "python3", marker, "--port", "{port}", cwd=place,
                            options=["--only", "protocol_answers,clean_sigterm"])
    finally:
        grading[0] = False
        watcher.join()
    got = {c["name"]: c for c in verdict["contracts"]}
    assert got["protocol_answers"]["outcome"] == "passed", f"the grader and the server should work on: {verdict}"
    assert rc == 1 and got["clean_sigterm"]["outcome"] == "failed", f"the bomb's processes outlive SIGTERM: {verdict}"
    assert peak[0] <= 300, f"the bomb ran {peak[0]} processes at once: RLIMIT_NPROC should stop it near 256"
    assert not processes_with(marker), "the grader left the bomb's processes behind"


def test_a_server_that_ignores_every_stop_signal_and_leaves_its_session_leaves_nothing(tmp_path):
    marker = f"stubborn_{os.getpid()}_{time.monotonic_ns()}.py"
    place = server_dir(tmp_path, f"""
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        if os.fork() == 0:
            os.setsid()  # a session of its own: killpg on the server's group misses it
            if os.fork() == 0:
                os.execvp("python3", ["python3", "-c", "import time; time.sleep(300)", "{marker}"])
            os._exit(0)  # the grandchild is orphaned
        while True:
            serve(sock.accept()[0])
        """, name=marker)
    rc, verdict = grade("single", "python3", marker, "--port", "{port}", cwd=place, options=["--only", "clean_sigterm"])
    measured = verdict["contracts"][0]["measured"] or ""
    assert rc == 1 and "after SIGTERM" in measured and "outlived their parent" in measured, verdict
    assert not processes_with(marker), "the grader left processes behind"


@pytest.mark.skipif(not ROOT_USER, reason="without root the server runs as you, and may write what you may")
def test_a_server_that_writes_outside_its_directory_harms_nothing(tmp_path, bin_dir):
    # Victims on the real disk, world-writable so that only the grader stands between them and the
    # server: a teacher's file, another submission, the disk through /tmp, the network beyond loopback.
    victims = pathlib.Path(tempfile.mkdtemp(prefix="serverlab-victims-", dir=bin_dir.parent))
    listener = socket.socket()
    try:
        victims.chmod(0o777)
        grades = victims / "grades.csv"
        grades.write_text("alice,70\n")
        grades.chmod(0o666)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.5)
        outside_port = listener.getsockname()[1]
        filler = f"fill_{os.getpid()}"
        place = server_dir(tmp_path, f"""
            def attempt(what):
                try:
                    what()
                except (OSError, ValueError):
                    pass

            def fill(path):
                with open(path, "wb") as f:
                    for _ in range(512):
                        f.write(b"x" * (1 << 20))

            attempt(lambda: open("{grades}", "a").write("mallory,70\\n"))
            attempt(lambda: open("{victims}/new.txt", "w").write("mine now"))
            attempt(lambda: open("mine.txt", "w").write("in my own directory"))
            attempt(lambda: fill("/tmp/{filler}"))
            attempt(lambda: socket.create_connection(("127.0.0.1", {outside_port}), timeout=1))
            while True:
                serve(sock.accept()[0])
            """)
        rc, verdict = grade("single", "python3", "server.py", "--port", "{port}", cwd=place,
                            options=["--only", "protocol_answers"])
        if not any("read-only" in note for note in verdict["contained"]):
            pytest.skip(f"no mount namespace here: {verdict['contained']}")
        assert rc == 0, f"the server serves on after its attempts: {verdict}"
        assert grades.read_text() == "alice,70\n", "a teacher's file was written"
        assert sorted(p.name for p in victims.iterdir()) == ["grades.csv"], "a file was created outside"
        assert not (place / "mine.txt").exists(), "the submission as handed in was changed"
        assert not pathlib.Path(f"/tmp/{filler}").exists(), "the server wrote into the machine's /tmp"
        try:
            listener.accept()[0].close()
            reached = True
        except OSError:
            reached = False
        assert not reached, "the server reached a port outside its network namespace"
    finally:
        listener.close()
        shutil.rmtree(victims, ignore_errors=True)


@pytest.mark.skipif(not ROOT_USER, reason="without root the server runs as you, in your directory")
def test_a_directory_too_large_to_copy_is_graded_in_a_read_only_view(tmp_path):
    # A repository with its builds (1.3 GiB here with the sanitizer builds) once filled the server's
    # 256 MiB /tmp with its copy: every server failed to start with "Exception occurred in preexec_fn".
    place = server_dir(tmp_path, """
        try:
            open("mine.txt", "w").write("in my own directory")
        except OSError:
            pass
        while True:
            serve(sock.accept()[0])
        """)
    with open(place / "build.bin", "wb") as f:
        f.truncate(65 << 20)  # sparse: larger than the copy allowance, costs the disk nothing
    place.chmod(0o777)  # so that only the read-only view can refuse the server's write
    rc, verdict = grade("single", "python3", "server.py", "--port", "{port}", cwd=place,
                        options=["--only", "protocol_answers"])
    if not any("every other file system read-only" in note for note in verdict["contained"]):
        pytest.skip(f"no mount namespace here: {verdict['contained']}")
    assert rc == 0, f"a large directory is graded, not refused: {verdict}"
    assert any("read-only view of its directory" in note for note in verdict["contained"]), (
        f"the report says the server ran in a read-only view of its directory: {verdict['contained']}")
    assert not (place / "mine.txt").exists(), "the submission as handed in was changed"
