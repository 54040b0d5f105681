"""pytest wiring of the grader: --server is the command under test, one server per contract,
each contract under a wall-clock limit, every process of the server gone after it; lab 9's
command gets the grader's backend ({backend}), one per contract too."""
import json
import pathlib
import signal
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1] / "tools" / "proc")]
from contain import WALL_S, Containment  # noqa: E402
from labs import NAMES  # noqa: E402
from student import StudentServer, become_subreaper  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--server", help="the command under test as a JSON list; {port} is replaced")
    parser.addoption("--server-cwd", help="the directory the command runs in (default: the current one)")
    parser.addoption("--lab", help="the lab being graded (a contract may differ by lab)")


def pytest_configure(config):
    for name in NAMES:
        config.addinivalue_line("markers", f"{name}: a contract of the {name} lab")
    config.addinivalue_line("markers", "optional: a contract worth no points (the toolkit's own servers meet it)")
    become_subreaper()


@pytest.fixture
def lab(request):
    return request.config.getoption("--lab")


class ContractTimeLimit(Exception):
    pass


def _out_of_time(signum, frame):
    raise ContractTimeLimit(f"the contract did not finish within {WALL_S} s: the server was stopped")


@pytest.fixture
def backend():
    """Lab 9: the grader's backend (backend.py), in a thread of the grader, on a free port."""
    from backend import Backend
    b = Backend()
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def server(request):
    argv = request.config.getoption("--server")
    if not argv:
        pytest.exit("give the server to grade: --server '[\"cmd\", \"--port\", \"{port}\"]'", returncode=2)
    # grade.py sets up the containment before pytest starts (it enters namespaces); run alone, the first server does.
    if getattr(request.config, "containment", None) is None:
        request.config.containment = Containment(request.config.getoption("--server-cwd") or ".")
    argv = json.loads(argv)
    # Lab 9's command relays to the grader's backend: started first, stopped after the server.
    backend = request.getfixturevalue("backend").address if any("{backend}" in a for a in argv) else None
    try:
        s = StudentServer(argv, request.config.containment, backend=backend)
    except RuntimeError as e:
        error = str(e)  # failed outside the except block, so the report is not chained to it
    else:
        error = None
    if error:
        pytest.fail(error, pytrace=False)
    previous = signal.signal(signal.SIGALRM, _out_of_time)
    signal.setitimer(signal.ITIMER_REAL, WALL_S)
    try:
        yield s
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        s.kill()
