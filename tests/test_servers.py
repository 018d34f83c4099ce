"""The test servers' helpers fail loudly: an installed server that does not come up is an error.

Only a server that is not installed may skip, decided before anything starts, and in CI even
that fails (``make test`` installs every one of them).
"""

import pytest

from tests.support import servers


def test_an_installed_server_that_exits_raises_server_unavailable(tmp_path):
    """``mlflow server`` over a backend it cannot open exits; the helper raises, naming its log."""
    with pytest.raises(
        servers.ServerUnavailable, match=r"mlflow server exited with \d+; see .*mlflow-server.log"
    ):
        with servers.mlflow_server(tmp_path, backend_uri="nosuchscheme://nowhere"):
            pass
    assert not issubclass(servers.ServerUnavailable, (servers.NotInstalled, pytest.skip.Exception))


def test_a_missing_server_skips_outside_ci_and_fails_in_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not here"):
        servers.skip_not_installed(servers.NotInstalled("not here"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="not here .CI installs it"):
        servers.skip_not_installed(servers.NotInstalled("not here"))


def test_no_fixture_turns_a_start_failure_into_a_skip():
    """Every fixture that starts a server catches NotInstalled only."""
    from pathlib import Path

    tests_dir = Path(__file__).resolve().parent
    offenders = [
        str(p.relative_to(tests_dir))
        for p in tests_dir.rglob("*.py")
        if p.name != "test_servers.py" and "except servers.ServerUnavailable" in p.read_text()
    ]
    assert offenders == []
