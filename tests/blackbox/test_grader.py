"""The lab grader (./lab grade): it passes our models and every answer key (in
Python, and for lab 7 in Node.js and asyncio); each answer key scores at most
half of the next lab; every cheat of tests/labs/cheats/ fails what it cheats,
saying what it skipped; failures are explained in words, in JSON with points,
and in Gradescope's format; the lab pages list what each grade checks, with its
points. Containment and the course tooling: test_grader_containment.py,
test_course.py."""
import concurrent.futures
import itertools
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from harness import Server, all_pids

ROOT = pathlib.Path(__file__).resolve().parents[2]
GRADE = ROOT / "tests" / "labs" / "grade.py"
SOLUTIONS = ROOT / "docs" / "labs" / "solutions"
CHEATS = ROOT / "tests" / "labs" / "cheats"
sys.path[:0] = [str(GRADE.parent), str(ROOT / "tools" / "proc")]
from labs import LABS, POINTS, TOTAL  # noqa: E402
from student import free_port  # noqa: E402

# Which labs each C++ model must pass, and the arguments it needs there. The state lab asks for
# several workers: 01, 05 and 08 serve from one thread, and fail it for that. It runs on one model
# of each kind of worker: processes x threads (04, in shared memory, as 02 and 03 count), a loop
# per process (06: its loops take bursts of connections whole), threads (07, a map under a mutex).
# 03 passes it too, more slowly: each of its workers serves one connection at a time.
MODEL_LABS = {
    "single_process": {"single": []},
    "fork_per_conn": {"single": [], "fork": []},
    "prefork": {lab: ["--workers", "2"] for lab in ("single", "prefork", "supervision")} |
               {"herd": ["--workers", "4", "--accept", "epoll-exclusive"]},
    "prefork_threads": {lab: ["--workers", "2"] for lab in ("single", "prefork", "threads", "supervision", "state")} |
                       {"herd": ["--workers", "4", "--accept", "epoll-exclusive"]},
    "event_loop": {"single": [], "event": []},
    "prefork_event_loop": {lab: ["--workers", "2"] for lab in ("single", "prefork", "supervision", "state")},
    "event_loop_threads": {"single": [], "state": ["--threads", "2"]},
    "uring": {"single": [], "event": []},
    # --fail-timeout 1: the lab gives a proxy 12 s to use a backend that came back; 09 leaves a
    # backend that refused alone for --fail-timeout (10 s by default, nginx's).
    "proxy": {"proxy": ["--workers", "2", "--backend", "{backend}", "--fail-timeout", "1"]},
}


def student_dir(tmp_path, *files, name="student"):
    """A student's directory holding copies of `files`, as handed in: the grader runs the command
    there (in a copy of it, as root), so names in the command are relative to it."""
    place = tmp_path / name
    place.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy(f, place / pathlib.Path(f).name)
    return place


def keys_dir(tmp_path):
    """Every answer key with what it imports (protocol.py, prefork.py)."""
    return student_dir(tmp_path, *sorted(SOLUTIONS.glob("*.py")), *sorted(SOLUTIONS.glob("*.js")), name="keys")


def grade(lab, *command, cwd, options=(), timeout=180):
    """Runs the grader as ./lab does, in `cwd`; returns (exit status, stdout + stderr)."""
    done = subprocess.run([sys.executable, GRADE, lab, "--cwd", str(cwd), *options, "--", *map(str, command)],
                          capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout + done.stderr


def grade_json(lab, *command, cwd, options=(), timeout=180):
    """The grader with --json: (exit status, the one JSON object on stdout, stderr)."""
    rc, out = grade(lab, *command, cwd=cwd, options=["--json", *options], timeout=timeout)
    try:
        verdict = json.loads(out.splitlines()[0] if out else "")
    except (json.JSONDecodeError, IndexError):
        pytest.fail(f"--json should print one JSON object on stdout; it printed:\n{out}")
    return rc, verdict, out


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
        ["single", "fork", "prefork", "herd", "threads", "supervision", "event", "state", "proxy"]


def test_the_proxy_lab_needs_the_backend_in_the_command(tmp_path):
    done = subprocess.run([sys.executable, GRADE, "proxy", "--", "python3", "proxy.py", "--port", "{port}"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "{backend}" in done.stderr, (f"a proxy command without {{backend}} should be a "
                                                                 f"usage error naming it:\n{done.stderr}")


def test_each_lab_is_worth_70_points_and_its_lesson_at_least_half():
    text = (GRADE.parent / "test_contracts.py").read_text()
    contracts = set(re.findall(r"^def test_(\w+)\(", text, re.M))
    for lab, points in POINTS.items():
        assert set(points) <= contracts, f"labs.py names contracts test_contracts.py lacks: {set(points) - contracts}"
        assert sum(p for p, _ in points.values()) == TOTAL, f"lab {lab}'s points add up to {sum(points.values())}"
        lesson = sum(p for p, new in points.values() if new)
        assert 2 * lesson >= TOTAL, f"lab {lab}'s lesson carries {lesson} of {TOTAL} points, less than half"
    unused = contracts - set().union(*POINTS.values())
    assert not unused, f"contracts no lab checks: {sorted(unused)}"


@pytest.mark.parametrize("lab,page", [(n, p) for n, _, p in LABS])
def test_each_lab_page_lists_exactly_what_its_grade_checks_with_its_points(lab, page):
    # The list that follows "What `./lab grade LAB` checks" on the lab's page: an item per contract,
    # "- `name` (N points): ...", or "(optional, no points)".
    lines = (ROOT / page).read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f"What `./lab grade {lab}` checks")), None)
    assert start is not None, f"{page} has no list starting with 'What `./lab grade {lab}` checks'"
    items = list(itertools.takewhile(lambda line: line.startswith(("- ", "  ")),
                                     itertools.dropwhile(lambda line: not line.startswith("- "), lines[start + 1:])))
    listed = {m.group(1): m.group(2) for item in items if (m := re.match(r"- `([a-z_]+)` \(([^)]*)\)", item))}
    wanted = {name: f"{p} points" if p else "optional, no points" for name, (p, _) in POINTS[lab].items()}
    assert listed == wanted, (f"{page} lists {listed} as what ./lab grade {lab} checks; labs.py says {wanted}: "
                              f"missing {sorted(wanted.keys() - listed.keys())}, not checked "
                              f"{sorted(listed.keys() - wanted.keys())}")


@pytest.mark.parametrize("model,lab", [(m, lab) for m, labs in MODEL_LABS.items() for lab in labs])
def test_our_models_pass_their_labs(bin_dir, uring_unavailable, tmp_path, model, lab):
    if model == "uring" and uring_unavailable:
        pytest.skip(uring_unavailable)  # 08 where io_uring cannot run: the reason it gives
    place = student_dir(tmp_path, bin_dir / model)  # where the grader's uid can run it, wherever the clone is
    rc, out = grade(lab, f"./{model}", "--port", "{port}", *MODEL_LABS[model][lab], cwd=place)
    assert rc == 0, f"{model} should pass lab {lab}:\n{out}"


# Each answer key passes its own lab; the key of the lab before it fails that lab's lesson for the
# reason it teaches, and so scores at most half of it: the lesson carries the other half (labs.py).
# Only the lesson's contracts are run for that: the kept ones are worth the rest at most.
@pytest.mark.parametrize("key,command,own_lab,next_lab,why", [
    ("iterative", ["python3", "iterative.py"], "single", "fork", "connections are not served concurrently"),
    ("fork_per_conn", ["python3", "fork_per_conn.py"], "fork", "prefork", "forks at least 2 workers before clients"),
    ("prefork", ["python3", "prefork.py"], "prefork", "herd", "the listening socket is blocking"),
    ("prefork_exclusive", ["python3", "prefork_exclusive.py", "--workers", "4"], "herd", "threads",
     "were not served at the same time"),
    ("prefork_threads", ["python3", "prefork_threads.py"], "threads", "supervision", "the dead were not replaced"),
    ("supervised", ["python3", "supervised.py"], "supervision", "event", "lab 7 asks for one process"),
    ("event_loop", ["python3", "event_loop.py"], "event", "state", "otherwise than 'VALUE n'"),
    ("event_loop_asyncio", ["python3", "event_loop_asyncio.py"], "event", None, None),
    ("event_loop.js", ["node", "event_loop.js"], "event", None, None),
    # Lab 9 asks for another program, a proxy, whose command names the grader's backend.
    ("shared_counters", ["python3", "shared_counters.py"], "state", None, None),
    ("proxy", ["python3", "proxy.py", "--backend", "{backend}"], "proxy", None, None),
])
def test_answer_keys_pass_their_lab_and_score_half_of_the_next(tmp_path, key, command, own_lab, next_lab, why):
    if command[0] == "node" and not shutil.which("node"):
        pytest.skip("Node.js is not installed (./lab setup installs Debian's nodejs)")
    script = SOLUTIONS / command[1]
    number = [n for n, _, _ in LABS].index(own_lab) + 1
    assert f"answer key for lab {number} " in script.read_text().split("\n")[1], \
        f"{script.name}'s first lines should say it is the answer key for lab {number}"
    place = keys_dir(tmp_path)
    rc, out = grade(own_lab, *command, "--port", "{port}", cwd=place)
    assert rc == 0, f"docs/labs/solutions/{command[1]} should pass lab {own_lab}:\n{out}"
    if next_lab:
        lesson = [name for name, (_, new) in POINTS[next_lab].items() if new]
        kept = sum(p for p, new in POINTS[next_lab].values() if not new)
        rc, verdict, out = grade_json(next_lab, *command, "--port", "{port}", cwd=place,
                                      options=["--only", ",".join(lesson)])
        measured = " ".join(c["measured"] or "" for c in verdict["contracts"])
        assert rc == 1 and why in measured, f"{key} should fail lab {next_lab} because {why!r}:\n{out}"
        assert 2 * (verdict["score"] + kept) <= TOTAL, \
            f"{key}, last week's key, earns {verdict['score']} of lab {next_lab}'s lesson points:\n{out}"


# The cheats (tests/labs/cheats/): each fails, in each lab it cheats, the contracts it fakes,
# with words that name what it skipped. (cheat, lab, arguments, {contract: words}).
PROXY = ["--backend", "{backend}"]
CHEAT_VERDICTS = [
    ("sleepless_decoys", "single", [], {"protocol_answers": "a SLEEP must wait at least its milliseconds"}),
    ("sleepless_decoys", "fork", [], {"concurrency": "connections are not served concurrently",
                                      "no_zombies": "serves each connection in a child of its own"}),
    ("sleepless_decoys", "prefork", [], {"fixed_pool": "held only by the command's own process"}),
    ("sleepless_decoys", "threads", [], {"concurrency": "connections are not served concurrently",
                                         "threads_serve_more_than_processes": "a SLEEP must wait at least"}),
    ("sleepless_decoys", "supervision", [], {"fixed_pool": "held only by the command's own process",
                                             "graceful_stop": "a SLEEP must wait at least"}),
    ("orphaning_master", "prefork", [], {"clean_sigterm": "outlived their parent"}),
    ("orphaning_master", "supervision", [], {"clean_sigterm": "outlived their parent",
                                             "graceful_stop": "outlived their parent"}),
    ("one_reap_per_sigchld", "fork", [], {"no_zombies": "one SIGCHLD stood for several children"}),
    ("sigpipe_default", "single", [], {"survives_rude_clients": "killed by SIGPIPE"}),
    ("first_line_per_read", "single", [],
     {"protocol_pipelining_and_errors": "split the input on LF, not on recv() calls"}),
    ("closes_only_on_quit", "single", [], {"no_fd_leak": "leaked per connection"}),
    ("fork_parent_keeps_socket", "fork", [], {"no_fd_leak": "leaked per connection"}),
    ("herd_poll", "herd", ["--workers", "4"], {"few_workers_woken": "the thundering herd"}),
    ("poll_on_blocking_socket", "herd", ["--workers", "4"],
     {"workers_wait_in_poll": "the listening socket is blocking"}),
    ("never_respawns", "supervision", [], {"respawn": "the dead were not replaced"}),
    ("forks_behind_decoys", "prefork", [], {"fixed_pool": "not workers before the clients came"}),
    ("locked_thread_pool", "threads", [], {"threads_serve_more_than_processes": "not served at the same time"}),
    ("fork_and_wait", "fork", [], {"concurrency": "connections are not served concurrently"}),
    ("thread_per_connection", "event", [], {"one_thread_serves_all": "a thread per connection or per SLEEP"}),
    ("sleep_in_threads", "event", [], {"one_thread_serves_all": "a thread per connection or per SLEEP"}),
    ("thread_pool", "event", [], {"one_thread_serves_all": "served by several threads, not by one loop"}),
    ("sleep_in_the_loop", "event", [], {"hundred_sleepers_at_once": "as a sleep() in the loop"}),
    ("blocking_line_read", "event", [],
     {"split_request_does_not_stall_others": "the loop waited for the rest of that line"}),
    ("unbounded_output", "event", [], {"backpressure_for_a_client_that_never_reads": "its output buffer holds every answer"}),
    # Servers whose connect()s all succeed at once, served one at a time: a tester that counts
    # connects passes them; the contracts measure answers.
    ("eager_sequential", "fork", [], {"concurrency": "connections are not served concurrently"}),
    ("eager_sequential", "herd", [], {"concurrency": "connections are not served concurrently",
                                      "burst_served_by_many": "the burst was not served by many workers"}),
    ("eager_sequential", "threads", [], {"threads_serve_more_than_processes": "they were not served at the same time"}),
    ("locked_pool", "prefork", [], {"concurrency": "connections are not served concurrently",
                                    "fixed_pool": "were all held by one worker"}),
    ("locked_pool", "threads", [], {"threads_serve_more_than_processes": "they were not served at the same time"}),
    # Lab 8: counts that are not shared, lost, never stored, or shared by nobody.
    ("dict_per_worker", "state", [], {"every_incr_counted_once": "must live where every worker sees it"}),
    ("unlocked_threads", "state", [], {"every_incr_counted_once": "INCRs were lost",
                                       "each_incr_answers_its_own_count": "two INCRs got the same count"}),
    ("never_stored", "state", [], {"every_incr_counted_once": "answered but never stored"}),
    ("one_loop_behind_decoys", "state", [], {"every_incr_counted_once": "served by one thread"}),
    ("one_count_for_all_names", "state", [],
     {"get_does_not_count_and_names_are_independent": "each name has a count of its own"}),
    ("unbounded_counters", "state", [], {"counter_names_and_limit": "the table is bounded"}),
    # Lab 9: proxies that block, leak, answer by themselves, hold everything, or hang up on a failure.
    ("proxy_blocking", "proxy", PROXY, {"slow_backend_request_does_not_block_others": "waited for one backend answer"}),
    ("proxy_never_closes_upstream", "proxy", PROXY, {"nothing_left_in_close_wait": "never closed its side"}),
    ("proxy_answers_itself", "proxy", PROXY, {"relays_to_the_backend": "the proxy answered by itself"}),
    ("proxy_unbounded_queue", "proxy", PROXY, {"backpressure_through_the_proxy": "Without a limit"}),
    ("proxy_byte_pipe", "proxy", PROXY,
     {"dead_backend_gets_an_error": "the client should get 'ERR ...' as soon as the backend's connection closes"}),
]


def test_every_cheat_fails_what_it_cheats_and_says_what_it_skipped(tmp_path):
    # Two gradings at a time: a cheat fails by what it does, not by a time limit a busy machine would miss.
    place = student_dir(tmp_path, SOLUTIONS / "protocol.py", SOLUTIONS / "prefork.py", *sorted(CHEATS.glob("*.py")))
    assert {c for c, *_ in CHEAT_VERDICTS} == {p.stem for p in CHEATS.glob("*.py")}, "a cheat with no verdict here"

    def run(case):
        cheat, lab, args, wanted = case
        return case, grade_json(lab, "python3", f"{cheat}.py", "--port", "{port}", *args, cwd=place,
                                options=["--only", ",".join(wanted)])

    wrong = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for (cheat, lab, _, wanted), (rc, verdict, out) in pool.map(run, CHEAT_VERDICTS):
            got = outcomes(verdict)
            for name, words in wanted.items():
                c = got.get(name, {})
                if rc != 1 or c.get("outcome") != "failed" or words not in (c.get("measured") or ""):
                    wrong.append(f"{cheat}.py in lab {lab} should fail {name} with {words!r}; got {c or out}")
    assert not wrong, "cheats the grader did not catch, or caught for another reason:\n" + "\n".join(wrong)


def test_a_sequential_server_takes_connects_at_once_but_answers_late():
    # The trap the eager_sequential and locked_pool cheats set: connect() succeeds as soon as the
    # kernel has queued the connection (the backlog), whether or not the server will serve it.
    for script in (CHEATS / "eager_sequential.py", CHEATS / "locked_pool.py", SOLUTIONS / "iterative.py"):
        clients, ms = 5, 200
        env = dict(os.environ, PYTHONPATH=str(SOLUTIONS))
        with Server([sys.executable, script, "--port", free_port()], env=env) as server:
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


def test_json_and_gradescope_verdicts_carry_the_points_and_the_same_exit_status(tmp_path):
    # prefork.py under the herd lab, three contracts: one passes, one fails (its workers wait in
    # accept), one is skipped (it speaks no STATS).
    place = keys_dir(tmp_path)
    only = ["--only", "protocol_answers,workers_wait_in_poll,herd_counters"]
    command = ["python3", "prefork.py", "--port", "{port}"]
    rc, verdict, _ = grade_json("herd", *command, cwd=place, options=only)
    plain_rc, plain = grade("herd", *command, cwd=place, options=only)
    assert rc == plain_rc == 1, f"--json should exit as the plain report does (1):\n{verdict}\n{plain}"
    assert verdict["lab"] == "herd" and verdict["command"] == command and verdict["passed"] is False, verdict
    assert verdict["counts"] == {"passed": 1, "failed": 1, "skipped": 1}, verdict["counts"]
    got = outcomes(verdict)
    assert [got[n]["outcome"] for n in ("protocol_answers", "workers_wait_in_poll", "herd_counters")] == \
        ["passed", "failed", "skipped"], verdict
    for c in verdict["contracts"]:
        assert set(c) == {"name", "description", "outcome", "measured", "hint", "points", "max_points"}, c
        assert c["description"] and c["hint"] and c["max_points"] == POINTS["herd"][c["name"]][0], c
    assert [got[n]["points"] for n in ("protocol_answers", "workers_wait_in_poll", "herd_counters")] == \
        [POINTS["herd"]["protocol_answers"][0], 0, 0], verdict
    assert (verdict["score"], verdict["max_score"]) == (POINTS["herd"]["protocol_answers"][0],
                                                        sum(POINTS["herd"][n][0] for n in got)), verdict
    assert got["protocol_answers"]["measured"] is None
    assert "blocking" in got["workers_wait_in_poll"]["measured"], got["workers_wait_in_poll"]
    assert "STATS" in got["herd_counters"]["measured"], got["herd_counters"]
    assert verdict["contained"] and all(isinstance(n, str) for n in verdict["contained"]), verdict
    assert f"{verdict['score']} of {verdict['max_score']} points" in plain, plain

    # Gradescope's results.json: the score, and a test per contract with name, score, max_score, status, output.
    rc, out = grade("herd", *command, cwd=place, options=[*only, "--format", "gradescope"])
    results = json.loads(out[:out.rindex("}") + 1])
    assert rc == 1 and results["score"] == verdict["score"], results
    tests = {t["name"]: t for t in results["tests"]}
    assert set(tests) == set(got), results
    for name, t in tests.items():
        assert set(t) == {"name", "score", "max_score", "status", "output"}, t
        assert (t["score"], t["max_score"]) == (got[name]["points"], got[name]["max_points"]), t
        assert t["status"] == ("failed" if got[name]["outcome"] == "failed" else "passed"), t
        assert got[name]["description"] in t["output"], t
    assert "blocking" in tests["workers_wait_in_poll"]["output"], tests


def test_the_command_runs_in_the_directory_lab_grade_was_run_from(tmp_path):
    # A student's files, named relative to the student's directory, not the repo's.
    place = student_dir(tmp_path, SOLUTIONS / "iterative.py", SOLUTIONS / "protocol.py")
    done = subprocess.run([ROOT / "lab", "grade", "single", "--only", "protocol_answers", "--", "python3",
                           "iterative.py", "--port", "{port}"], cwd=place, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, (f"`./lab grade single -- python3 iterative.py` run from the directory holding "
                                  f"iterative.py should pass:\n{done.stdout}{done.stderr}")


def write_server(tmp_path, body):
    """A student's directory with server.py (protocol.py's listener() and serve(), then `body`) and protocol.py."""
    place = student_dir(tmp_path, SOLUTIONS / "protocol.py", name="server")
    (place / "server.py").write_text(textwrap.dedent("""\
        import os, select, signal, socket, sys, time
        from protocol import listener, serve
        sock, _ = listener()
        """) + textwrap.dedent(body))
    return place


def test_a_broken_server_fails_with_a_clear_message(tmp_path):
    # A fork per connection that never reaps its children.
    place = write_server(tmp_path, """
        while True:
            conn, _ = sock.accept()
            if os.fork() == 0:
                serve(conn)
                os._exit(0)
            conn.close()
        """)
    rc, out = grade("fork", "python3", "server.py", "--port", "{port}", cwd=place, options=["--only", "no_zombies"])
    assert rc == 1, out
    assert "FAIL" in out and "zombie process(es) (state Z in /proc)" in out and "waitpid" in out, \
        f"the report should name the zombies and where to look:\n{out}"


def test_a_hanging_server_fails_in_bounded_time_and_is_cleaned_up(tmp_path):
    place = write_server(tmp_path, """
        while True:
            conn, _ = sock.accept()  # accepts, never answers, never closes
            time.sleep(3600)
        """)
    script = f"hangs_{os.getpid()}_{time.monotonic_ns()}.py"  # its name in the command line finds it in /proc
    (place / "server.py").rename(place / script)
    began = time.monotonic()
    rc, out = grade("single", "python3", script, "--port", "{port}", cwd=place, timeout=120,
                    options=["--only", "protocol_answers,clean_sigterm"])
    assert rc == 1 and "FAIL" in out, out
    assert time.monotonic() - began < 60, "grading a hanging server should stay bounded"
    assert not processes_with(script), "the hanging server is still running"


def test_a_loop_without_backpressure_fails_the_backpressure_contract(tmp_path):
    """The answer key with its output limit lifted: a client that never reads makes it grow."""
    source = (SOLUTIONS / "event_loop.py").read_text()
    assert "LIMIT = 1 << 20" in source, "the answer key's limit moved: update this test"
    place = student_dir(tmp_path, SOLUTIONS / "protocol.py")
    (place / "event_loop.py").write_text(source.replace("LIMIT = 1 << 20", "LIMIT = 1 << 40"))
    rc, verdict, out = grade_json("event", "python3", "event_loop.py", "--port", "{port}", cwd=place,
                                  options=["--only", "backpressure_for_a_client_that_never_reads"])
    got = outcomes(verdict)["backpressure_for_a_client_that_never_reads"]
    assert rc == 1 and got["outcome"] == "failed" and "Without a limit" in got["measured"], out
