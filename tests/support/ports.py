"""Ports for the servers a test starts (Daphne, private redis-servers), and the proof that one listens.

A port found free is free only at that moment: another run's server, or an outgoing connection, may take it
before the server started for it binds. So a start is confirmed by the process itself listening on the port
(its own socket, read from /proc), never by something answering there, and a clash is tried again.
"""

import contextlib
import socket
import time
from pathlib import Path

ADDRESS_IN_USE = "Address already in use"
LISTEN = "0A"  # the TCP state in /proc/net/tcp


class PortTaken(Exception):
    """The process could not bind its port: somebody else has it."""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def silent_port(backlog=64):
    """A port where connections are taken (the kernel completes the handshake) and never answered: a server
    that hangs, which only a client's own timeout gets away from. Yields the port."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(backlog)
        yield listener.getsockname()[1]


def _socket_inodes(pid):
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _tcp_sockets(pid):
    """(local port, remote port, state, inode) of each TCP socket in the network namespace of `pid`."""
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            yield int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16), fields[3], fields[9]


def listens(pid, port):
    """Does process `pid` itself hold a listening TCP socket on `port`?"""
    try:
        inodes = _socket_inodes(pid)
    except OSError:
        return False
    return any(local == port and state == LISTEN and inode in inodes for local, _, state, inode in _tcp_sockets(pid))


def accepted_by(pids, port, client_port):
    """Which of the processes `pids`, all serving `port`, holds the accepted end of the connection a client
    opened from `client_port` (None if none does, e.g. it is still waiting in the backlog)."""
    for pid in pids:
        with contextlib.suppress(OSError):
            inodes = _socket_inodes(pid)
            for local, remote, state, inode in _tcp_sockets(pid):
                if local == port and remote == client_port and state != LISTEN and inode in inodes:
                    return pid
    return None


def wait_listening(process, port, *, output, timeout):
    """Wait until `process` (a Popen) listens on `port`. PortTaken if it exited because the port was in use,
    RuntimeError if it exited otherwise or took longer than `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = output()
            if ADDRESS_IN_USE in text:
                raise PortTaken(port)
            raise RuntimeError(f"exited ({process.returncode}) before listening on {port}:\n{text[-3000:]}")
        if listens(process.pid, port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"not listening on {port} within {timeout}s:\n{output()[-3000:]}")


def start_listening(start, *, port=None, attempts=20, pause=0.5):
    """`start(port)` until the server it starts binds: on a new free port each time, or, when `port` is given
    (a server restarted where its clients expect it), on that one, waiting for its holder to let go."""
    for _ in range(attempts):
        chosen = port or free_port()
        try:
            return start(chosen)
        except PortTaken:
            if port is not None:
                time.sleep(pause)
    raise RuntimeError(f"no port to listen on after {attempts} attempts" + (f" (port {port})" if port else ""))
