"""`python -m diquis.reuse_port HOST:PORT daphne [daphne's arguments]`: one web process of several on one port,
each with a listening socket of its own (SO_REUSEPORT), run as `daphne --fd N` on it.

Why not one socket shared by every process (supervisord's `fcgi-program`, the Channels docs' recipe): the process
that wakes first accepts every connection waiting, and a keep-alive connection (a proxy's pool, an API client, a
websocket) stays with the process that accepted it, so a burst of them lands on one process while the others
idle (tests/e2e/test_web_processes.py measured 28 of 32, 16 of 16). With a socket per process the kernel deals
each new connection to one of them by a hash of its addresses: an even spread. The price, the kernel's: the
connections still queued on a socket whose process dies are reset (supervisord starts it again at once).

Supervisor cannot bind a socket per process (Supervisor/supervisor#1661), and Daphne cannot set the option
(its endpoints are Twisted's, which have none), hence these few lines: bind, listen, and exec Daphne on the
descriptor. Linux only (elsewhere SO_REUSEPORT does not balance); the one-process command is plain `daphne`.
"""

import os
import socket
import sys

BACKLOG = 4096  # a burst of reconnecting websockets (Daphne's own default is 50: API.md, the Procfile)
USAGE = "usage: python -m diquis.reuse_port HOST:PORT daphne [daphne's arguments]"


def listening_socket(host, port, backlog=BACKLOG):
    """A TCP socket listening on (host, port) beside the other processes' (SO_REUSEPORT), inherited across exec."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def main(argv):
    if len(argv) < 2 or ":" not in argv[0]:
        sys.exit(USAGE)
    host, _, port = argv[0].rpartition(":")
    try:
        sock = listening_socket(host, int(port))
    except OSError as error:
        sys.exit(f"diquis.reuse_port: cannot listen on {host}:{port}: {error.strerror}")
    program, *arguments = argv[1:]
    os.execvp(program, [program, "--fd", str(sock.fileno()), *arguments])


if __name__ == "__main__":
    main(sys.argv[1:])
