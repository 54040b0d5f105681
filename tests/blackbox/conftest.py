import os
import pathlib

import pytest

from harness import Server

ROOT = pathlib.Path(__file__).resolve().parents[2]


def pytest_addoption(parser):
    parser.addoption("--bin-dir", default=str(ROOT / "build" / "bin"),
                     help="where the built models are (default: build/bin)")


def with_faults(bin_dir, faults, env=None):
    """The environment that makes the named calls fail in a server (tests/fault/inject.cpp)."""
    env = dict(env or os.environ, LD_PRELOAD=str(bin_dir / "libfault_inject.so"), SERVERLAB_FAULTS=faults)
    # Under AddressSanitizer (./lab asan) the preloaded library comes before ASan's runtime: allowed here.
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
    return env


@pytest.fixture(scope="session")
def bin_dir(request):
    path = pathlib.Path(request.config.getoption("--bin-dir"))
    if not path.is_dir():
        pytest.exit(f"{path} does not exist: build first (./lab build)", returncode=2)
    return path


@pytest.fixture
def start(bin_dir, uring_unavailable):
    """start(model, *args, env=None, faults=None) -> Server on a free loopback port; every one is killed
    at teardown. `faults`: calls to fail (tests/fault/inject.cpp's SERVERLAB_FAULTS)."""
    servers = []

    def _start(model, *args, env=None, faults=None):
        if model == "uring" and uring_unavailable:
            pytest.skip(uring_unavailable)  # 08 where io_uring cannot run: the reason it gives
        exe = bin_dir / model
        assert exe.exists(), f"{exe} is not built"
        if faults:
            env = with_faults(bin_dir, faults, env)
        server = Server([exe, "--port", "0", *args], env=env)
        servers.append(server)
        return server

    yield _start
    for server in servers:
        server.kill()
    # Under a sanitizer build (./lab tsan), a report on any server's stderr fails the test.
    if os.environ.get("SERVERLAB_SANITIZER"):
        reports = [s.stderr() for s in servers if "Sanitizer" in s.stderr()]
        if reports:
            pytest.fail("sanitizer report:\n" + reports[0][-4000:], pytrace=False)


@pytest.fixture(scope="session")
def uring_unavailable(bin_dir):
    """Why 08 (uring) cannot run on this machine, or None. It exits with status 2 and says why: a
    kernel without io_uring, kernel.io_uring_disabled, a seccomp filter, a build without liburing."""
    import subprocess
    try:
        done = subprocess.run([bin_dir / "uring", "--port", "0"], capture_output=True, text=True, timeout=1)
    except subprocess.TimeoutExpired:
        return None  # it started and waited for connections (run() killed it)
    if done.returncode == 2:
        return done.stderr.strip() or "uring exited with status 2"
    return None
