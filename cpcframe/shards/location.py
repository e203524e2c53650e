"""Where a sharded corpus lives: a local (or mounted, shared) folder, or a URL read through
WebDataset's ``gopen`` (``webdataset.gopen``), with a deadline on every read.

``data.dataset.root`` forms:

* ``/data/ls-shards`` (or ``file:///data/ls-shards``): a folder.
* ``http://host/ls-shards``, ``https://...``: read with ``curl`` (``-f``: an HTTP error is
  an error, a 404 a missing file).
* ``s3://bucket/ls-shards``: read with ``aws s3 cp`` (the AWS CLI and its credentials).
* ``pipe:COMMAND {name}``: any command that writes the file ``{name}`` (``index.json``,
  ``shard-000000.tar``) to its standard output, e.g. ``pipe:gsutil cat gs://b/ls/{name}``.

Every remote read runs under coreutils ``timeout`` (the whole process group: a stalled
connection or command is killed after ``timeout`` seconds), so an unreachable location is
a clear error, never a hang. WebDataset's own ``curl`` handler retries 30 times with a
30 s connect timeout (up to ~16 min per file), which is why it is not used as it is.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from urllib.parse import urlparse

#: curl's exit codes worth a word (man curl, EXIT CODES).
CURL_ERRORS = {6: "the host name does not resolve", 7: "the host refuses the connection or is down",
               22: "the server answered with an HTTP error (e.g. 404: no such file)",
               28: "the transfer timed out", 35: "the TLS handshake failed", 56: "the connection broke"}
TIMED_OUT = 124  # coreutils timeout's status when it killed the command


class LocationError(OSError):
    """A file of a remote location could not be read; ``missing`` when it is not there."""

    def __init__(self, message: str, missing: bool = False):
        super().__init__(message)
        self.missing = missing


def is_remote(root: str) -> bool:
    return root.startswith("pipe:") or urlparse(root).scheme not in ("", "file")


class Location:
    """A corpus location; :meth:`read` gives one file's bytes.

    Args:
        root: a folder, or a URL of the forms above.
        timeout: seconds one remote read may take (connecting and transferring).
        retries: curl's retries of a transient HTTP failure.
    """

    def __init__(self, root: str, timeout: float = 120.0, retries: int = 2):
        self.root = str(root)
        self.timeout, self.retries = float(timeout), int(retries)
        self.remote = is_remote(self.root)
        scheme = "pipe" if self.root.startswith("pipe:") else urlparse(self.root).scheme
        if self.remote and scheme not in ("http", "https", "s3", "pipe"):
            from cpcframe.errors import UserError
            raise UserError(f"data.dataset.root: {self.root!r}: {scheme}:// locations are read with "
                            "pipe:COMMAND {name} (e.g. pipe:gsutil cat gs://bucket/corpus/{name})")
        if self.root.startswith("pipe:") and "{name}" not in self.root:
            from cpcframe.errors import UserError
            raise UserError(f"data.dataset.root: {self.root!r}: a pipe: location names the file as "
                            "{name}, e.g. pipe:cat /mnt/corpus/{name}")
        self.scheme = scheme

    def __str__(self) -> str:
        return self.root

    def path(self, name: str) -> Path:
        """The local path of ``name`` (a local location only)."""
        root = self.root[len("file://"):] if self.root.startswith("file://") else self.root
        return Path(root).expanduser() / name

    def command(self, name: str) -> str:
        """The shell command that writes remote file ``name`` to standard output."""
        if self.scheme == "pipe":
            return self.root[len("pipe:"):].replace("{name}", shlex.quote(name))
        url = f"{self.root.rstrip('/')}/{name}"
        connect = max(1, int(min(self.timeout, 30)))
        if self.scheme == "s3":
            return (f"aws s3 cp --only-show-errors --cli-connect-timeout {connect} "
                    f"--cli-read-timeout {max(1, int(self.timeout))} {shlex.quote(url)} -")
        return (f"curl -f -s -L --connect-timeout {connect} --max-time {max(1, int(self.timeout))} "
                f"--retry {self.retries} {shlex.quote(url)}")

    def read(self, name: str) -> bytes:
        """The bytes of file ``name``.

        Raises:
            FileNotFoundError: a local file that is not there.
            LocationError: a remote read that failed or ran out of time (``missing`` for
                an HTTP error such as 404, or a ``pipe:``/s3 command that found nothing).
        """
        if not self.remote:
            return self.path(name).read_bytes()
        from webdataset.gopen import gopen  # the optional extra, only for remote corpora

        limit = max(1, int(self.timeout)) + 5  # curl's own --max-time first, then the hard limit
        command = f"timeout -k 2 {limit} sh -c {shlex.quote(self.command(name))}"
        stream = gopen(f"pipe:{command}", "rb")
        data, failed = b"", None
        try:
            data = stream.read()
            stream.close()
        except OSError as exc:
            failed = exc
        status = stream.proc.wait()
        if failed is None and status in (0, 141):
            return data
        where = f"{self.root.rstrip('/')}/{name}" if self.scheme != "pipe" else self.command(name)
        if status == TIMED_OUT or (self.scheme in ("http", "https") and status == 28):
            raise LocationError(f"{where}: no answer within data.dataset.timeout = {self.timeout:g} s")
        if self.scheme in ("http", "https"):
            reason = CURL_ERRORS.get(status, f"curl exit status {status}")
            raise LocationError(f"{where}: {reason}", missing=status == 22)
        raise LocationError(f"{where}: the command failed (exit status {status})", missing=status == 1)
