"""Which keyring backend the keyring slot trusts: keyring's ChainerBackend reports priority 10
whenever two backends of any positive priority are installed, even if each alone is one locker
refuses (a plaintext file keyring such as keyrings.alt's, priority 0.5). The slot secret must
never go to such a backend through the chainer. The plug-ins here are real keyring back-ends,
installed through keyring's own entry-point discovery."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

from conftest import RunLocker

from locker.errors import EXIT_ERROR, EXIT_OK

_PLUGIN = '''
import json
import os

from keyring.backend import KeyringBackend


class PlainFile(KeyringBackend):
    """Keeps passwords in a plaintext JSON file, like keyrings.alt's PlaintextKeyring."""

    priority = 0.5

    def _load(self):
        try:
            with open(os.environ["PLAIN_KEYRING_FILE"]) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def _save(self, data):
        with open(os.environ["PLAIN_KEYRING_FILE"], "w") as f:
            json.dump(data, f)

    def get_password(self, service, username):
        return self._load().get(service + " " + username)

    def set_password(self, service, username, password):
        data = self._load()
        data[service + " " + username] = password
        self._save(data)

    def delete_password(self, service, username):
        data = self._load()
        data.pop(service + " " + username)
        self._save(data)


class OtherPlainFile(PlainFile):
    priority = 0.6
'''


def _plugin_env(tmp_path: Path) -> dict[str, str | None]:
    site = tmp_path / "plugins"
    info = site / "plainfile_keyring-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plainfile-keyring\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[keyring.backends]\nplainfile = plainfile_keyring\n")
    (site / "plainfile_keyring.py").write_text(textwrap.dedent(_PLUGIN))
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PYTHON_KEYRING_BACKEND": None,  # let keyring choose, as on a user's machine
        "DBUS_SESSION_BUS_ADDRESS": None,  # no Secret Service: a jump host
        "PYTHONPATH": str(site),
        "PLAIN_KEYRING_FILE": str(tmp_path / "plain-keyring.json"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
    }


def test_remember_refuses_a_chainer_of_untrusted_backends(cli: RunLocker, tmp_path: Path) -> None:
    env = _plugin_env(tmp_path)
    before = (tmp_path / "vault.locker").read_bytes()
    proc: subprocess.CompletedProcess[bytes] = cli("slot", "remember", env=env)
    assert proc.returncode == EXIT_ERROR, (proc.stdout, proc.stderr)
    err = proc.stderr.decode()
    assert err.startswith("locker: error: the OS keyring cannot be used"), err
    assert "plainfile_keyring" in err  # names the backend that would have held the secret
    assert not (tmp_path / "plain-keyring.json").exists()
    assert (tmp_path / "vault.locker").read_bytes() == before
    # unlocking still works, falling back to the passphrase with one warning
    proc = cli("ls", env=env)
    assert proc.returncode == EXIT_OK, proc.stderr
