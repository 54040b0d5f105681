"""The lab grader (./lab grade): it passes our models, grades the Python
reference servers for the right reasons, explains failures, and never leaves
a process behind."""
import os
import pathlib
import subprocess
import sys
import textwrap
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
GRADE = ROOT / "tests" / "labs" / "grade.py"
EXAMPLES = ROOT / "docs" / "labs" / "examples"

# Which labs each C++ model must pass, and the arguments it needs.
MODEL_LABS = {
    "single_process": ["single"],
    "fork_per_conn": ["single", "fork"],
    "prefork": ["single", "fork", "prefork", "herd", "supervision"],
    "prefork_threads": ["single", "fork", "prefork", "herd", "threads", "supervision"],
}


def grade(lab, *command, timeout=180):
    done = subprocess.run([sys.executable, GRADE, lab, "--", *map(str, command)],
                          capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout + done.stderr


def processes_with(marker):
    """Pids whose command line contains `marker` (the grader must leave none)."""
    found = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(p))
            except OSError:
                pass
    return found


def test_list_prints_the_labs_in_course_order():
    out = subprocess.run([sys.executable, GRADE, "--list"], capture_output=True, text=True, timeout=30).stdout
    assert [line.split()[0] for line in out.splitlines()] == \
        ["single", "fork", "prefork", "herd", "threads", "supervision"]


@pytest.mark.parametrize("model,lab", [(m, lab) for m, labs in MODEL_LABS.items() for lab in labs])
def test_our_models_pass_their_labs(bin_dir, model, lab):
    extra = ["--workers", "2"] if model.startswith("prefork") else []
    rc, out = grade(lab, bin_dir / model, "--port", "{port}", *extra)
    assert rc == 0, f"{model} should pass lab {lab}:\n{out}"


@pytest.mark.parametrize("example,own_lab,next_lab,why", [
    ("iterative", "single", "fork", "connections are not served concurrently"),
    ("fork_per_conn", "fork", "prefork", "forks at least 2 workers before clients arrive"),
    ("prefork", "prefork", "threads", "were not served at the same time"),
])
def test_reference_servers_pass_their_lab_and_fail_the_next_for_the_right_reason(example, own_lab, next_lab, why):
    script = EXAMPLES / f"{example}.py"
    rc, out = grade(own_lab, sys.executable, script, "--port", "{port}")
    assert rc == 0, f"docs/labs/examples/{example}.py should pass lab {own_lab}:\n{out}"
    rc, out = grade(next_lab, sys.executable, script, "--port", "{port}")
    assert rc == 1 and why in out, f"{example}.py should fail lab {next_lab} because {why!r}:\n{out}"


def write_server(tmp_path, body):
    path = tmp_path / "server.py"
    path.write_text(textwrap.dedent(f"""\
        import os, signal, socket, sys, time
        sys.path.insert(0, {str(EXAMPLES)!r})
        from protocol import listener, serve
        sock, _ = listener()
        """) + textwrap.dedent(body))
    return path


def test_a_broken_server_fails_with_a_clear_message(tmp_path):
    # A fork per connection that never reaps its children.
    script = write_server(tmp_path, """
        while True:
            conn, _ = sock.accept()
            if os.fork() == 0:
                serve(conn)
                os._exit(0)
            conn.close()
        """)
    rc, out = grade("fork", sys.executable, script, "--port", "{port}")
    assert rc == 1, out
    assert "FAIL" in out and "zombie processes (state Z in /proc)" in out and "waitpid" in out, \
        f"the report should name the zombies and where to look:\n{out}"


def test_nothing_is_left_behind_by_a_server_that_ignores_sigterm_and_escapes_its_session(tmp_path):
    marker = f"serverlab-grader-test-{os.getpid()}-{time.monotonic_ns()}"
    script = write_server(tmp_path, f"""
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if os.fork() == 0:
            os.setsid()  # a session of its own: killpg on the server's group misses it
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", "300", "{marker}"])
            os._exit(0)  # the grandchild is orphaned
        while True:
            conn, _ = sock.accept()
            serve(conn)
        """)
    rc, out = grade("single", sys.executable, script, "--port", "{port}")
    assert rc == 1 and "after SIGTERM" in out, f"ignoring SIGTERM should fail the clean-stop contract:\n{out}"
    left = processes_with(marker)
    assert not left, f"the grader left processes behind: {left}"


def test_a_hanging_server_fails_in_bounded_time_and_is_cleaned_up(tmp_path):
    script = write_server(tmp_path, """
        while True:
            conn, _ = sock.accept()  # accepts, never answers, never closes
            time.sleep(3600)
        """)
    began = time.monotonic()
    rc, out = grade("single", sys.executable, script, "--port", "{port}", timeout=120)
    assert rc == 1 and "FAIL" in out, out
    assert time.monotonic() - began < 90, "grading a hanging server should stay bounded"
    assert not processes_with(str(script)), "the hanging server is still running"
