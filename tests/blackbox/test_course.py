"""docs/course.md is true as written: its grading loop and CSV, run as they are on the
page, give the page's CSV; what it says of the labs' contracts matches labs.py; and
`./lab course` writes a Gradescope autograder that grades a submission in a fake
/autograder tree, a GitHub Classroom workflow whose steps grade a student's repository
contract by contract, and a student copy without answers."""
import concurrent.futures
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import pytest

import markdown

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "docs" / "labs" / "solutions"
COURSE = ROOT / "docs" / "course.md"
sys.path[:0] = [str(ROOT / "tests" / "labs")]
from course import GRADER_FILES, NOT_FOR_STUDENTS  # noqa: E402
from labs import LABS, POINTS, TOTAL  # noqa: E402


def course_section(heading):
    """The text of docs/course.md under `## heading`, up to the next `## `."""
    text = COURSE.read_text()
    assert f"\n## {heading}\n" in text, f"docs/course.md has no section '## {heading}'"
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def fenced_blocks(text):
    """[(info string, body)] of the ``` blocks of a markdown text, in order."""
    return [(block.info, "".join(f"{line}\n" for line in block.lines)) for block in markdown.read(text)[0]]


def test_course_says_which_earlier_contracts_each_lab_keeps():
    # The paragraph after the sessions' table, claim by claim, against labs.py.
    prose = " ".join(course_section("The sessions").split())
    for claim in ("Every lab checks `protocol_answers`, `protocol_pipelining_and_errors`, `survives_rude_clients` "
                  "and `clean_sigterm`", "labs 2 to 4 keep every contract of the labs before them",
                  "the contracts new in labs 4, 5 and 6 are checked in their own lab only",
                  "`threads` leaves out `no_zombies`", "`supervision` leaves out `concurrency` and `no_fd_leak`",
                  "keeps only `concurrency` and `no_fd_leak` besides those four", "`state` keeps what `event` keeps",
                  "`proxy`, another kind of program, keeps only the four"):
        assert claim in prose, f"docs/course.md no longer says {claim!r}: update this test with the page"
    by_lab, names = {lab: set(POINTS[lab]) for lab in POINTS}, [name for name, _, _ in LABS]
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
    assert by_lab["state"] & earlier["state"] == by_lab["event"] & earlier["event"], by_lab["state"]
    assert by_lab["proxy"] & earlier["proxy"] == four, by_lab["proxy"]


# The class of "Grading a class": each student's files and `command`, as the page describes them.
CLASS = {
    "alice": ({"iterative.py": SOLUTIONS / "iterative.py", "protocol.py": SOLUTIONS / "protocol.py"},
              "python3 iterative.py --port {port}"),
    "bob": ({"fork_per_conn.py": SOLUTIONS / "fork_per_conn.py", "protocol.py": SOLUTIONS / "protocol.py"},
            "python3 fork_per_conn.py --port {port}"),
    "carol": ({"server.py": ROOT / "tests" / "labs" / "carol_ping_only.py"}, "python3 server.py {port}"),
}


def pids_with_env(entry):
    """Pids whose environment holds `entry` (NAME=value): whatever a shell started, however deep."""
    found = []
    for p in os.listdir("/proc"):
        try:
            with open(f"/proc/{p}/environ", "rb") as f:
                if entry.encode() in f.read().split(b"\0"):
                    found.append(int(p))
        except (OSError, ValueError):
            pass
    return found


def kill_processes_with_env(entry):
    for _ in range(50):
        pids = pids_with_env(entry)
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
    # About 15 s: alice and bob pass in about 4 s each, carol's clean_sigterm waits its 5 s.
    section = course_section("Grading a class")
    blocks = fenced_blocks(section)
    loops = [body for info, body in blocks if info == "sh" and "for dir in submissions/" in body]
    scripts = [body for info, body in blocks if info == "sh" and "csv.writer" in body]
    tables = [body for info, body in blocks if body.startswith("student,")]
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


def lab_course(*args, cwd):
    done = subprocess.run([ROOT / "lab", "course", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"./lab course {' '.join(map(str, args))} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


def test_the_gradescope_autograder_grades_a_submission_in_a_fake_autograder_tree(tmp_path):
    lab_course("gradescope", "single", "bundle", "--packages", "nodejs", cwd=tmp_path)
    root = tmp_path / "autograder"  # as Gradescope lays it out: the zip in source/, run_autograder beside
    with zipfile.ZipFile(tmp_path / "bundle" / "autograder.zip") as z:
        names = set(z.namelist())
        assert {"setup.sh", "run_autograder", *(f"serverlab/{f}" for f in GRADER_FILES)} <= names, names
        z.extractall(root / "source")
    for name in ("setup.sh", "run_autograder", "serverlab/lab"):  # zip keeps no modes on extraction
        (root / "source" / name).chmod(0o755)
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")

    # setup.sh installs the grader's packages and the ones asked for, with apt-get (a stub here).
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "apt-get").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'apt-calls'}\n")
    (stubs / "apt-get").chmod(0o755)
    env = dict(os.environ, PATH=f"{stubs}:{os.environ['PATH']}", AUTOGRADER_ROOT=str(root))
    subprocess.run([root / "source" / "setup.sh"], cwd=root / "source", env=env, check=True, timeout=60)
    installs = [line.split() for line in (tmp_path / "apt-calls").read_text().splitlines() if "install" in line]
    assert installs and {"python3", "python3-pytest", "nodejs"} <= set(installs[0]), installs

    # A submission: the answer key of lab 1 and its command. Every contract passes: 70 points.
    (root / "submission").mkdir()
    for name in ("iterative.py", "protocol.py"):
        shutil.copy(SOLUTIONS / name, root / "submission" / name)
    (root / "submission" / "command").write_text("python3 iterative.py --port {port}\n")
    subprocess.run([root / "run_autograder"], cwd=root, env=env, timeout=180)
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == TOTAL and len(results["tests"]) == len(POINTS["single"]), results
    assert all(t["status"] == "passed" and t["score"] == t["max_score"] == POINTS["single"][t["name"]][0]
               for t in results["tests"]), results

    # Without a command file: no points, and the output says what is missing.
    (root / "submission" / "command").unlink()
    subprocess.run([root / "run_autograder"], cwd=root, env=env, timeout=60)
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 0 and "command" in results["output"], results


def test_the_github_classroom_workflow_grades_each_contract_with_its_points(tmp_path):
    yaml = pytest.importorskip("yaml", reason="python3-yaml reads the workflow (./lab setup installs it)")
    repo = tmp_path / "assignment"
    lab_course("github-classroom", "single", repo, cwd=tmp_path)
    workflow = yaml.safe_load((repo / ".github" / "workflows" / "classroom.yml").read_text())
    steps = workflow["jobs"]["run-autograding-tests"]["steps"]
    graders = [s for s in steps if s.get("uses") == "classroom-resources/autograding-command-grader@v1"]
    reporter = [s for s in steps if s.get("uses") == "classroom-resources/autograding-grading-reporter@v1"]
    assert {s["id"]: s["with"]["max-score"] for s in graders} == {n: p for n, (p, _) in POINTS["single"].items()}
    assert len(reporter) == 1 and reporter[0]["with"]["runners"].split(",") == [s["id"] for s in graders]
    assert set(reporter[0]["env"]) == {f"{s['id'].upper()}_RESULTS" for s in graders}, reporter
    assert all("$(cat command)" in s["with"]["command"] and int(s["with"]["timeout"]) <= 10 for s in graders)

    # A student's repository: the template with the answer key of lab 1, whose command is the default
    # one; each step's command, run as the command grader runs it (sh -c), exits 0: the points are earned.
    shutil.copy(SOLUTIONS / "protocol.py", repo / "protocol.py")
    shutil.copy(SOLUTIONS / "iterative.py", repo / "server.py")
    assert (repo / "command").read_text().split() == ["python3", "server.py", "--port", "{port}"]

    def run(step):
        return step["id"], subprocess.run(["sh", "-c", step["with"]["command"]], cwd=repo, capture_output=True,
                                          text=True, timeout=120)

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        failed = [f"{name}: {done.stdout}{done.stderr}" for name, done in pool.map(run, graders) if done.returncode]
    assert not failed, "steps that gave no points to the answer key:\n" + "\n".join(failed)


def test_a_student_copy_has_no_answers_and_its_links_resolve(tmp_path):
    from test_docs import LINK, prose
    copy = tmp_path / "copy"
    lab_course("student-copy", copy, cwd=tmp_path)
    for path in NOT_FOR_STUDENTS:
        assert not (copy / path).exists(), f"{path} is in the student copy"
    assert (copy / "tests" / "labs" / "grade.py").exists() and (copy / "docs" / "labs" / "1-single-process.md").exists()
    broken = []
    for page in copy.rglob("*.md"):
        for number, line in prose(page):
            for target in LINK.findall(line):
                if not re.match(r"[a-z]+:", target) and not (page.parent / target.split("#")[0]).exists():
                    broken.append(f"{page.relative_to(copy)}:{number}: {target}")
    assert not broken, "links into what the copy left out:\n" + "\n".join(broken)
    labs = subprocess.run([copy / "lab", "grade", "--list"], capture_output=True, text=True, timeout=60)
    assert labs.returncode == 0 and len(labs.stdout.splitlines()) == len(LABS), labs


def test_the_proxy_labs_bundles_name_the_backend_in_the_command(tmp_path):
    # Lab 9's command names the grader's backend: the template's command file and the autograder's
    # message for a submission without one both say {backend}.
    lab_course("github-classroom", "proxy", tmp_path / "template", cwd=tmp_path)
    assert "--backend {backend}" in (tmp_path / "template" / "command").read_text()
    assert (tmp_path / "template" / ".serverlab" / "tests" / "labs" / "backend.py").exists(), \
        "the grader's backend is part of the grader the workflow runs"
    lab_course("gradescope", "proxy", tmp_path / "bundle", cwd=tmp_path)
    assert "--backend {backend}" in (tmp_path / "bundle" / "run_autograder").read_text()
