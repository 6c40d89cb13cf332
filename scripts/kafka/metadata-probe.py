"""Exits 0 when the Kafka broker at HOST:PORT answers a metadata request listing at least one
broker, 1 otherwise. Plain Kafka protocol (Metadata v1), so it needs nothing but Python."""

import socket
import struct
import sys


def metadata_brokers(host: str, port: int, timeout: float) -> int:
    client_id = b"orders-scripts"
    # Request header v1 (api key 3 = Metadata, version 1, correlation id, client id), then a
    # null topic array: "every topic".
    body = struct.pack(">hhih", 3, 1, 1, len(client_id)) + client_id + struct.pack(">i", -1)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", read_exactly(sock, 4))[0]
        response = read_exactly(sock, size)
    correlation_id, broker_count = struct.unpack(">ii", response[:8])
    if correlation_id != 1:
        raise ValueError(f"unexpected correlation id {correlation_id}")
    return broker_count


def read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        data += chunk
    return data


if __name__ == "__main__":
    host, port = sys.argv[1].rsplit(":", 1)
    try:
        sys.exit(0 if metadata_brokers(host, int(port), 2.0) > 0 else 1)
    except (OSError, ValueError):
        sys.exit(1)
