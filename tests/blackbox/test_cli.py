"""Shared options: bad values give a clear message and a non-zero exit before any socket work."""
import subprocess

import pytest

from models import MODELS

pytestmark = pytest.mark.parametrize("model", MODELS)


def run(bin_dir, model, *args):
    return subprocess.run([bin_dir / model, *args], capture_output=True, timeout=10, text=True)


@pytest.mark.parametrize("args, mentions", [
    (["--port", "70000"], "--port"),
    (["--port", "abc"], "--port"),
    (["--backlog", "0"], "--backlog"),
    (["--idle-timeout", "-3"], "--idle-timeout"),
    (["--host", "not-an-address"], "not an IPv4 or IPv6 address"),
    (["--no-such-option"], "--no-such-option"),
])
def test_bad_option_is_refused(bin_dir, model, args, mentions):
    r = run(bin_dir, model, *args)
    assert r.returncode != 0, f"{args} was accepted"
    assert mentions in r.stderr + r.stdout, f"the message for {args} does not mention {mentions!r}: {r.stderr}"
    assert "listening on" not in r.stdout, "a bad option must stop the server before it listens"


def test_version_and_help(bin_dir, model):
    r = run(bin_dir, model, "--version")
    assert r.returncode == 0 and r.stdout.strip(), r
    r = run(bin_dir, model, "--help")
    assert r.returncode == 0
    for option in ("--host", "--port", "--backlog", "--idle-timeout", "--trace", "--version"):
        assert option in r.stdout, f"--help does not list {option}"
