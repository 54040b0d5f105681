"""The lab grader (./lab grade): it passes our models, grades the Python
answer keys for the right reasons, is not fooled by a sequential server,
explains failures (in words and in JSON), runs the student's command where
the student is, and never leaves a process behind; and docs/course.md's
"Grading a class" gives, run as written, the CSV the page shows."""
import functools
import itertools
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from harness import Server, all_pids

ROOT = pathlib.Path(__file__).resolve().parents[2]
GRADE = ROOT / "tests" / "labs" / "grade.py"
SOLUTIONS = ROOT / "docs" / "labs" / "solutions"
COURSE = ROOT / "docs" / "course.md"
sys.path.insert(0, str(GRADE.parent))
from labs import LABS  # noqa: E402
from student import free_port  # noqa: E402

# Which labs each C++ model must pass, and the arguments it needs.
MODEL_LABS = {
    "single_process": ["single"],
    "fork_per_conn": ["single", "fork"],
    "prefork": ["single", "fork", "prefork", "herd", "supervision"],
    "prefork_threads": ["single", "fork", "prefork", "herd", "threads", "supervision"],
    "event_loop": ["single", "fork", "event"],
    "prefork_event_loop": ["single", "fork", "prefork", "supervision"],
}


def grade(lab, *command, options=(), timeout=180):
    """Runs the grader as ./lab does; returns (exit status, stdout + stderr)."""
    done = subprocess.run([sys.executable, GRADE, lab, *options, "--", *map(str, command)],
                          capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout + done.stderr


def grade_json(lab, *command, options=(), timeout=180):
    """The grader with --json: (exit status, the one JSON object on stdout, stderr)."""
    done = subprocess.run([sys.executable, GRADE, lab, "--json", *options, "--", *map(str, command)],
                          capture_output=True, text=True, timeout=timeout)
    try:
        verdict = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"--json should print one JSON object on stdout; it printed:\n{done.stdout}\n{done.stderr}")
    return done.returncode, verdict, done.stderr


def outcomes(verdict):
    return {c["name"]: c for c in verdict["contracts"]}


def pids_whose(proc_file, matches):
    """Pids whose /proc/PID/<proc_file> (bytes) `matches`; processes that exit meanwhile are skipped."""
    found = []
    for pid in all_pids():
        try:
            with open(f"/proc/{pid}/{proc_file}", "rb") as f:
                if matches(f.read()):
                    found.append(pid)
        except OSError:
            pass
    return found


def processes_with(marker):
    """Pids whose command line contains `marker` (the grader must leave none)."""
    return pids_whose("cmdline", lambda cmdline: marker.encode() in cmdline)


def test_list_prints_the_labs_in_course_order():
    out = subprocess.run([sys.executable, GRADE, "--list"], capture_output=True, text=True, timeout=30).stdout
    assert [line.split()[0] for line in out.splitlines()] == \
        ["single", "fork", "prefork", "herd", "threads", "supervision", "event"]


@functools.cache
def contracts_by_lab():
    """{lab: the names ./lab grade LAB runs}, from the markers of test_contracts.py (read in a
    process of its own: its lab markers are not this session's)."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import json, sys; sys.path.insert(0, {str(GRADE.parent)!r})
        import test_contracts as tc
        marks = {{n[5:]: [m.name for m in getattr(tc, n).pytestmark] for n in dir(tc) if n.startswith("test_")}}
        print(json.dumps(marks))
        """)], capture_output=True, text=True, timeout=30, check=True)
    marks = json.loads(done.stdout)
    return {lab: {name for name, labs in marks.items() if lab in labs} for lab, _, _ in LABS}


@pytest.mark.parametrize("lab,page", [(n, p) for n, _, p in LABS])
def test_each_lab_page_lists_exactly_what_its_grade_checks(lab, page):
    # The list that follows "What `./lab grade LAB` checks" on the lab's page.
    lines = (ROOT / page).read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f"What `./lab grade {lab}` checks")), None)
    assert start is not None, f"{page} has no list starting with 'What `./lab grade {lab}` checks'"
    items = itertools.takewhile(lambda line: line.startswith(("- ", "  ")),
                                itertools.dropwhile(lambda line: not line.startswith("- "), lines[start + 1:]))
    every = set().union(*contracts_by_lab().values())
    listed = {name for item in items for name in re.findall(r"`([a-z_]+)`", item)} & every
    wanted = contracts_by_lab()[lab]
    assert wanted and listed == wanted, (f"{page} lists {sorted(listed)} as what ./lab grade {lab} checks; "
                                         f"it checks {sorted(wanted)}: missing {sorted(wanted - listed)}, "
                                         f"not checked {sorted(listed - wanted)}")


@pytest.mark.parametrize("model,lab", [(m, lab) for m, labs in MODEL_LABS.items() for lab in labs])
def test_our_models_pass_their_labs(bin_dir, model, lab):
    extra = ["--workers", "2"] if model.startswith("prefork") else []
    if lab == "herd":
        extra += ["--accept", "poll"]  # the herd lab grades workers that wait in poll(), not in accept()
    rc, out = grade(lab, bin_dir / model, "--port", "{port}", *extra)
    assert rc == 0, f"{model} should pass lab {lab}:\n{out}"


# Each answer key passes its own lab and fails the next one for the reason that lab teaches.
@pytest.mark.parametrize("solution,number,own_lab,next_lab,why", [
    ("iterative", 1, "single", "fork", "connections are not served concurrently"),
    ("fork_per_conn", 2, "fork", "prefork", "forks at least 2 workers before clients arrive"),
    ("prefork", 3, "prefork", "herd", "the listening socket is blocking"),
    ("prefork_poll", 4, "herd", "threads", "were not served at the same time"),
    ("prefork_threads", 5, "threads", "supervision", "instead of 'SLEPT 1000'"),
    ("supervised", 6, "supervision", "event", "lab 7 asks for one process with one thread"),
    ("event_loop", 7, "event", None, None),
])
def test_answer_keys_pass_their_lab_and_fail_the_next_for_the_right_reason(solution, number, own_lab, next_lab, why):
    script = SOLUTIONS / f"{solution}.py"
    key = f"The answer key for lab {number} "
    assert key in script.read_text().split("\n")[1], f"{script.name}'s first line should say {key!r}"
    rc, out = grade(own_lab, sys.executable, script, "--port", "{port}")
    assert rc == 0, f"docs/labs/solutions/{solution}.py should pass lab {own_lab}:\n{out}"
    if next_lab:
        rc, out = grade(next_lab, sys.executable, script, "--port", "{port}")
        assert rc == 1 and why in out, f"{solution}.py should fail lab {next_lab} because {why!r}:\n{out}"


def write_server(tmp_path, body):
    path = tmp_path / "server.py"
    path.write_text(textwrap.dedent(f"""\
        import os, select, signal, socket, sys, time
        sys.path.insert(0, {str(SOLUTIONS)!r})
        from protocol import listener, serve
        sock, _ = listener()
        """) + textwrap.dedent(body))
    return path


# A server that serves one connection at a time, but whose connect()s all
# succeed at once: a backlog of 4096, and every queued connection accepted
# before it serves the oldest one to the end.
EAGER_SEQUENTIAL = """
    import collections
    sock.listen(4096)
    waiting = collections.deque()
    while True:
        while select.select([sock], [], [], 0 if waiting else None)[0]:
            waiting.append(sock.accept()[0])
        serve(waiting.popleft())
    """

# A pool that serves one connection at a time: 3 workers forked before any
# client, each holding an exclusive lock from accept() to the end of the
# connection. The lock is flock() on a file each worker opens itself (a flock
# belongs to an open file, so one file opened before fork would be shared
# and exclude no one). Several processes, the concurrency of lab 1.
LOCKED_POOL = """
    import fcntl
    lock_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pool.lock")
    workers = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            lock = open(lock_path, "w")
            while True:
                fcntl.flock(lock, fcntl.LOCK_EX)  # the whole pool waits while one connection is served
                serve(sock.accept()[0])
                fcntl.flock(lock, fcntl.LOCK_UN)
        workers.append(pid)

    def stop(*_):
        for pid in workers:
            os.kill(pid, signal.SIGTERM)
        exit(0)

    signal.signal(signal.SIGTERM, stop)
    while True:
        signal.pause()
    """


def sequential_server(tmp_path, kind):
    """The script of a server that serves one connection at a time, by `kind`."""
    if kind == "iterative":
        return SOLUTIONS / "iterative.py"
    return write_server(tmp_path, {"eager": EAGER_SEQUENTIAL, "locked_pool": LOCKED_POOL}[kind])


def assert_connects_at_once_but_answers_late(script, clients=5, ms=200):
    """The trap of a tester that only connects, shown on `script`: `clients`
    connect()s complete at once (the kernel queues the connections in the
    backlog, served or not), but their SLEEP ms are answered one after another."""
    with Server([sys.executable, script, "--port", free_port()]) as server:
        began = time.monotonic()
        conns = []
        try:
            for _ in range(clients):
                conns.append(server.connect(timeout=10))
            connected_s = time.monotonic() - began
            for c in conns:
                c.send(f"SLEEP {ms}\nQUIT\n")  # QUIT: a sequential server goes on to the next connection
            sent = time.monotonic()
            answered_s = []
            for c in conns:
                got = c.line()
                assert got == f"SLEPT {ms}", f"SLEEP {ms} was answered {got!r}"
                answered_s.append(time.monotonic() - sent)
        finally:
            for c in conns:
                c.close()
    assert connected_s < 1.0, (f"{clients} connect()s to {script.name} took {connected_s:.2f} s: the backlog "
                               f"should take them at once, served or not")
    serial_s = clients * ms / 1000
    assert answered_s[-1] > 0.9 * serial_s, (
        f"{clients} SLEEP {ms} were all answered after {answered_s[-1]:.2f} s: {script.name} served them at "
        f"the same time (one after another takes {serial_s:.1f} s), so it is no sequential server")


# The concurrency-type contracts of each lab, and the words their failure must say.
CONCURRENCY_CONTRACTS = {
    "fork": {"concurrency": "connections are not served concurrently"},
    "prefork": {"concurrency": "connections are not served concurrently"},
    "herd": {"concurrency": "connections are not served concurrently",
             "burst_served_by_many": "the burst was not served by many workers"},
    "threads": {"concurrency": "connections are not served concurrently",
                "threads_serve_more_than_processes": "they were not served at the same time"},
}


SEQUENTIAL_KINDS = ["iterative", "eager", "locked_pool"]


@pytest.mark.parametrize("sequential", SEQUENTIAL_KINDS)
def test_a_sequential_server_takes_connects_at_once_but_answers_late(tmp_path, sequential):
    # The trap the next test's servers set: connects succeed, answers come late.
    assert_connects_at_once_but_answers_late(sequential_server(tmp_path, sequential))


@pytest.mark.parametrize("lab", CONCURRENCY_CONTRACTS)
@pytest.mark.parametrize("sequential", SEQUENTIAL_KINDS)
def test_a_sequential_server_fails_every_concurrency_contract(tmp_path, sequential, lab):
    # A known false pass of other testers: connect() succeeds as soon as the
    # kernel has queued the connection (the backlog), whether or not the
    # server will serve it (the test above). The contracts measure answers, so
    # a server that serves one connection at a time fails each of them, saying why.
    script = sequential_server(tmp_path, sequential)
    wanted, passing = dict(CONCURRENCY_CONTRACTS[lab]), set()
    if sequential == "locked_pool":
        # burst_served_by_many asks for every client answered and more than one worker holding connections,
        # not for answers at the same time: a pool taking turns may pass it, one connection after another.
        wanted.pop("burst_served_by_many", None)
        if lab != "fork":
            passing = {"fixed_pool"}  # it is a pool: it fails for serving one at a time, not for the lack of one
    rc, verdict, err = grade_json(lab, sys.executable, script, "--port", "{port}",
                                  options=["--only", ",".join([*wanted, *passing])])
    got = outcomes(verdict)
    assert rc == 1 and sorted(got) == sorted([*wanted, *passing]), \
        f"lab {lab} should fail {sorted(wanted)} and pass {sorted(passing)}:\n{verdict}\n{err}"
    for name, words in wanted.items():
        assert got[name]["outcome"] == "failed" and words in got[name]["measured"], \
            f"a {sequential} sequential server should fail {name} of lab {lab} with {words!r}; got {got[name]}"
    for name in passing:
        assert got[name]["outcome"] == "passed", f"the {sequential} server should pass {name}: {got[name]}"


def test_json_verdict_has_every_contract_and_the_same_exit_status(tmp_path):
    # prefork.py under the herd lab, three contracts: one passes, one fails (its
    # workers wait in accept), one is skipped (it speaks no STATS).
    script = SOLUTIONS / "prefork.py"
    only = ["--only", "protocol_answers,workers_wait_in_poll,herd_counters"]
    command = [sys.executable, str(script), "--port", "{port}"]
    rc, verdict, _ = grade_json("herd", *command, options=only)
    plain_rc, plain = grade("herd", *command, options=only)
    assert rc == plain_rc == 1, f"--json should exit as the plain report does (1):\n{verdict}\n{plain}"
    assert verdict["lab"] == "herd" and verdict["command"] == command and verdict["passed"] is False, verdict
    assert verdict["counts"] == {"passed": 1, "failed": 1, "skipped": 1}, verdict["counts"]
    got = outcomes(verdict)
    assert [got[n]["outcome"] for n in ("protocol_answers", "workers_wait_in_poll", "herd_counters")] == \
        ["passed", "failed", "skipped"], verdict
    for c in verdict["contracts"]:
        assert set(c) == {"name", "description", "outcome", "measured", "hint"}, c
        assert c["description"] and c["hint"], c
    assert got["protocol_answers"]["measured"] is None
    assert "blocking" in got["workers_wait_in_poll"]["measured"], got["workers_wait_in_poll"]
    assert "STATS" in got["herd_counters"]["measured"], got["herd_counters"]

    rc, verdict, _ = grade_json("single", sys.executable, SOLUTIONS / "iterative.py", "--port", "{port}",
                                options=["--only", "protocol_answers"])
    assert rc == 0 and verdict["passed"] is True and verdict["counts"]["failed"] == 0, verdict


def test_the_command_runs_in_the_directory_lab_grade_was_run_from(tmp_path):
    # A student's files, named relative to the student's directory, not the repo's.
    for name in ("iterative.py", "protocol.py"):
        shutil.copy(SOLUTIONS / name, tmp_path / name)
    done = subprocess.run([ROOT / "lab", "grade", "single", "--", sys.executable, "iterative.py", "--port", "{port}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, (f"`./lab grade single -- python3 iterative.py` run from the directory holding "
                                  f"iterative.py should pass:\n{done.stdout}{done.stderr}")


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


def test_a_loop_without_backpressure_fails_the_backpressure_contract(tmp_path):
    """The answer key with its output limit lifted: a client that never reads makes it grow."""
    source = (SOLUTIONS / "event_loop.py").read_text()
    assert "LIMIT = 1 << 20" in source, "the answer key's limit moved: update this test"
    script = tmp_path / "event_loop.py"
    script.write_text(source.replace("LIMIT = 1 << 20", "LIMIT = 1 << 40"))
    (tmp_path / "protocol.py").write_text((SOLUTIONS / "protocol.py").read_text())
    rc, verdict, err = grade_json("event", sys.executable, script, "--port", "{port}",
                                  options=["--only", "backpressure_for_a_client_that_never_reads"])
    got = outcomes(verdict)["backpressure_for_a_client_that_never_reads"]
    assert rc == 1 and got["outcome"] == "failed" and "Without a limit" in got["measured"], (verdict, err)


# ---- docs/course.md ---------------------------------------------------------------------------

def course_section(heading):
    """The text of docs/course.md under `## heading`, up to the next `## `."""
    text = COURSE.read_text()
    assert f"\n## {heading}\n" in text, f"docs/course.md has no section '## {heading}'"
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def fenced_blocks(text):
    """[(info string, body)] of the ``` blocks of a markdown text, in order."""
    blocks, info, body = [], None, []
    for line in text.splitlines():
        if line.startswith("```"):
            if info is None:
                info, body = line[3:].strip(), []
            else:
                blocks.append((info, "".join(f"{b}\n" for b in body)))
                info = None
        elif info is not None:
            body.append(line)
    return blocks


def test_course_says_which_earlier_contracts_each_lab_keeps():
    # The paragraph after the sessions' table, claim by claim, against the markers of test_contracts.py.
    prose = " ".join(course_section("The sessions").split())
    for claim in ("Every lab checks `protocol_answers`, `protocol_pipelining_and_errors`, `survives_rude_clients` "
                  "and `clean_sigterm`", "labs 2 to 4 keep every contract of the labs before them",
                  "the contracts new in labs 4, 5 and 6 are checked in their own lab only",
                  "`threads` leaves out `no_zombies`", "`supervision` leaves out `concurrency` and `no_fd_leak`",
                  "keeps only `concurrency` and `no_fd_leak` besides those four"):
        assert claim in prose, f"docs/course.md no longer says {claim!r}: update this test with the page"
    by_lab, names = contracts_by_lab(), [name for name, _, _ in LABS]
    earlier = {lab: set().union(*(by_lab[n] for n in names[:i])) for i, lab in enumerate(names)}
    new = {lab: by_lab[lab] - earlier[lab] for lab in names}
    left_out = {lab: earlier[lab] - by_lab[lab] for lab in names}
    four = {"protocol_answers", "protocol_pipelining_and_errors", "survives_rude_clients", "clean_sigterm"}
    assert all(four <= by_lab[lab] for lab in names), by_lab
    assert not left_out["fork"] | left_out["prefork"] | left_out["herd"], left_out
    for lab in ("herd", "threads", "supervision"):
        elsewhere = {name for name in new[lab] if any(name in by_lab[other] for other in names if other != lab)}
        assert not elsewhere, f"{sorted(elsewhere)}, new in lab {lab}, is checked in other labs too"
    assert left_out["threads"] - new["herd"] == {"no_zombies"}, left_out["threads"]
    assert left_out["supervision"] - new["herd"] - new["threads"] == {"concurrency", "no_fd_leak"}, \
        left_out["supervision"]
    assert by_lab["event"] & earlier["event"] == four | {"concurrency", "no_fd_leak"}, by_lab["event"]


# The class of "Grading a class": each student's files and `command`, as the page describes them.
CLASS = {
    "alice": ({"iterative.py": SOLUTIONS / "iterative.py", "protocol.py": SOLUTIONS / "protocol.py"},
              "python3 iterative.py --port {port}"),
    "bob": ({"fork_per_conn.py": SOLUTIONS / "fork_per_conn.py", "protocol.py": SOLUTIONS / "protocol.py"},
            "python3 fork_per_conn.py --port {port}"),
    "carol": ({"server.py": ROOT / "tests" / "labs" / "carol_ping_only.py"}, "python3 server.py {port}"),
}


def processes_with_env(entry):
    """Pids whose environment holds `entry` (NAME=value): whatever a shell started, however deep."""
    return pids_whose("environ", lambda environ: entry.encode() in environ.split(b"\0"))


def kill_processes_with_env(entry):
    for _ in range(50):
        pids = processes_with_env(entry)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def test_grading_a_class_as_the_course_page_says_gives_the_pages_csv(tmp_path):
    # docs/course.md's two blocks, run as they are on the page, on a class of three for lab 1.
    # About 15 s: alice and bob pass in about 3 s each, carol's clean_sigterm waits its 5 s.
    section = course_section("Grading a class")
    blocks = fenced_blocks(section)
    loops = [body for info, body in blocks if info == "sh" and "for dir in submissions/" in body]
    scripts = [body for info, body in blocks if info == "sh" and "csv.writer" in body]
    tables = [body for info, body in blocks if body.startswith("student,passed,")]
    assert len(loops) == len(scripts) == len(tables) == 1, \
        f"'Grading a class' should hold one grading loop, one CSV script and one CSV; it holds {blocks}"
    assert "lab=single" in loops[0] and "lab=single" in scripts[0], "the page's example grades lab 1 (single)"
    for student, (_, command) in CLASS.items():
        if student != "bob":  # the page spells alice's and carol's command
            assert f"`{command}`" in section, f"docs/course.md should say {student}'s command is {command!r}"
        place = tmp_path / "submissions" / student / "single"
        place.mkdir(parents=True)
        for name, source in CLASS[student][0].items():
            shutil.copy(source, place / name)
        (place / "command").write_text(command + "\n")
    marker = f"SERVERLAB_COURSE_TEST={os.getpid()}-{time.monotonic_ns()}"
    env = dict(os.environ, SERVERLAB=str(ROOT), **dict([marker.split("=", 1)]))
    try:
        loop = subprocess.run(["bash", "-c", loops[0]], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=240)
        script = subprocess.run(["bash", "-c", scripts[0]], cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=60)
    finally:
        kill_processes_with_env(marker)  # the grader and the servers, even when a block timed out
    verdicts = {p.stem: p.read_text() for p in sorted((tmp_path / "verdicts" / "single").glob("*.json"))}
    said = f"the loop printed:\n{loop.stdout}{loop.stderr}\nthe verdicts: {verdicts}"
    assert loop.stdout.splitlines() == ["alice: exit status 0", "bob: exit status 0", "carol: exit status 1"], said
    assert script.returncode == 0, f"the CSV script failed:\n{script.stderr}"
    csv = (tmp_path / "single.csv").read_text().splitlines()
    assert csv == tables[0].splitlines(), (f"docs/course.md shows this single.csv:\n{tables[0]}\nthe page's blocks "
                                          f"wrote:\n" + "\n".join(csv) + f"\n{said}")
