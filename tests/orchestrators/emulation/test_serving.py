"""An emulator served on loopback queues a burst of connections, as a web server does."""

from __future__ import annotations

import socket

from runs.orchestrators.emulation import Clock, ServedEmulator
from runs.orchestrators.registry import emulator_class

BURST = 20  # more than a sync opens at once (runs and their items side by side)


def test_a_burst_of_connections_waits_to_be_accepted_rather_than_dropped():
    app = emulator_class("conductor")(clock=Clock(), history=1)
    emulator = ServedEmulator(app)  # listening, but nothing accepts until it starts
    connections: list[socket.socket] = []
    try:
        # A connection the listen backlog has no room for is not answered (its SYN is dropped
        # and sent again a second later): a client with a short timeout gives up.
        for _ in range(BURST):
            connections.append(socket.create_connection((emulator.host, emulator.port), 0.5))
    finally:
        emulator.start()
    try:
        for connection in connections:
            connection.sendall(b"GET /_emulator/in-flight HTTP/1.0\r\nHost: emulator\r\n\r\n")
        answers = [connection.makefile("rb").readline() for connection in connections]
    finally:
        for connection in connections:
            connection.close()
        emulator.stop()
    assert answers == [b"HTTP/1.0 200 OK\r\n"] * BURST
