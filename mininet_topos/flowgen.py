"""A tiny traffic generator and sink for emulated hosts (standard library only).

One flow is exactly one socket (no side connection, unlike iperf3), which is
what an AI collective's data connection looks like to the network. UDP
datagrams carry a sequence number and a send timestamp so the sink can count
every lost packet and the longest gap; both ends write a JSON report with a
goodput time series.

    python3 flowgen.py recv --proto udp --port 4791 --duration 10 --report r.json
    python3 flowgen.py send --proto udp --dst 10.0.2.1 --port 4791 --sport 40001 \\
        --rate 8 --duration 8 --report s.json

A sender may carry a fixed amount (``--bytes``: a collective's transfer, done
when its last byte arrives) and wait for a common start time (``--start-at``,
unix seconds), so that the flows of one collective begin together. The
sender's ``start`` is when its first byte left (after a TCP connect and the
common start), so loss, goodput and completion times are counted from there.

New-flow setup latency is measured end to end with an echo server and a
prober: for each new source port the prober sends one datagram and waits for
its echo (the first packet of a new 5-tuple waits for the controller), then a
second one on the same 5-tuple (rules in place) as the baseline:

    python3 flowgen.py echo --port 4791 --duration 30
    python3 flowgen.py probe --dst 10.0.2.1 --port 4791 --count 300 --report p.json
"""

import argparse
import itertools
import json
import socket
import struct
import sys
import time

HEADER = struct.Struct("!QdI")  # sequence, send time, flow tag
BIN_S = 0.1


def _bins(timeline, start, nbytes, now):
    index = int((now - start) / BIN_S)
    while len(timeline) <= index:
        timeline.append(0)
    timeline[index] += nbytes


def recv(args):
    sock = socket.socket(
        socket.AF_INET, socket.SOCK_DGRAM if args.proto == "udp" else socket.SOCK_STREAM
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", args.port))
    deadline = time.time() + args.duration
    timeline, total, received = [], 0, 0
    first = last = None
    max_gap = 0.0
    per_tag = {}
    if args.proto == "tcp":
        sock.listen(1)
        sock.settimeout(max(0.1, deadline - time.time()))
        try:
            conn, _ = sock.accept()
        except OSError:
            conn = None
        if conn is not None:
            conn.settimeout(0.2)
            while time.time() < deadline:
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except ConnectionResetError:  # a sender that ends with --reset
                    break
                if not data:
                    break
                now = time.time()
                first = first or now
                if last is not None:
                    max_gap = max(max_gap, now - last)
                last = now
                total += len(data)
                _bins(timeline, first, len(data), now)
            conn.close()
    else:
        sock.settimeout(0.2)
        while time.time() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            now = time.time()
            first = first or now
            if last is not None:
                max_gap = max(max_gap, now - last)
            last = now
            total += len(data)
            received += 1
            _bins(timeline, first, len(data), now)
            if len(data) >= HEADER.size:
                seq, sent_at, tag = HEADER.unpack_from(data)
                flow = per_tag.setdefault(
                    tag,
                    {
                        "seqs": {},
                        "highest": -1,
                        "reordered": 0,
                        "bytes": 0,
                        "last": now,
                        "max_gap_s": 0.0,
                    },
                )
                if seq < flow["highest"]:
                    flow["reordered"] += 1
                flow["highest"] = max(flow["highest"], seq)
                flow["seqs"][seq] = sent_at
                flow["bytes"] += len(data)
                flow["max_gap_s"] = max(flow["max_gap_s"], now - flow["last"])
                flow["last"] = now
    sock.close()
    report = {
        "proto": args.proto,
        "port": args.port,
        "bytes": total,
        "duration_s": (last - first) if first and last else 0.0,
        "goodput_bps": total * 8 / (last - first) if first and last and last > first else 0.0,
        "max_gap_s": max_gap,
        "bin_s": BIN_S,
        "timeline_bps": [b * 8 / BIN_S for b in timeline],
        "first_time": first or 0.0,
        "last_time": last or 0.0,
    }
    if args.proto == "udp":
        flows = {
            str(tag): {
                "packets": len(f["seqs"]),
                "highest_seq": f["highest"],
                "lost": max(0, f["highest"] + 1 - len(f["seqs"])),
                "reordered": f["reordered"],
                "bytes": f["bytes"],
                "max_gap_s": f["max_gap_s"],
                "losses": _losses(f["seqs"]),
            }
            for tag, f in per_tag.items()
        }
        report.update(
            packets=received,
            lost=sum(f["lost"] for f in flows.values()),
            reordered=sum(f["reordered"] for f in flows.values()),
            flows=flows,
        )
    _write(args.report, report)


MAX_LOSS_RECORDS = 500


def _losses(seqs):
    """[[send time of the last packet before a hole, packets missing], ...] for a UDP flow.

    Tells *when* packets were lost, not just how many, so a reader can count
    the loss around an event (a link failure) apart from loss at other times.
    Packets missing before the first arrival are dated by that arrival. The
    largest holes are kept if there are very many.
    """
    if not seqs:
        return []
    order = sorted(seqs)
    holes = [[round(seqs[order[0]], 4), order[0]]] if order[0] > 0 else []
    for prev, nxt in itertools.pairwise(order):
        if nxt - prev > 1:
            holes.append([round(seqs[prev], 4), nxt - prev - 1])
    if len(holes) > MAX_LOSS_RECORDS:
        holes = sorted(sorted(holes, key=lambda h: -h[1])[:MAX_LOSS_RECORDS])
    return holes


def send(args):
    proto = socket.SOCK_DGRAM if args.proto == "udp" else socket.SOCK_STREAM
    sock = socket.socket(socket.AF_INET, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.sport:
        sock.bind(("0.0.0.0", args.sport))
    payload = bytearray(args.size)
    if args.proto == "tcp":
        for _ in range(50):  # the sink may start a moment later
            try:
                sock.connect((args.dst, args.port))
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit(f"flowgen: cannot connect to {args.dst}:{args.port}")
        sock.settimeout(1.0)
    # Connected first, then the common start: a collective's transfers begin together.
    if args.start_at > time.time():
        time.sleep(args.start_at - time.time())
    start = time.time()
    deadline = start + args.duration
    sent = seq = 0
    interval = args.size * 8 / (args.rate * 1e6) if args.rate else 0.0
    next_send = start
    while not args.bytes or sent < args.bytes:
        now = time.time()
        if now >= deadline:
            break
        if interval:
            if now < next_send:
                time.sleep(min(next_send - now, 0.01))
                continue
            next_send += interval
        HEADER.pack_into(payload, 0, seq, now, args.tag)
        # TCP stops at exactly --bytes; UDP sends whole datagrams (its last one full size).
        tail = args.bytes - sent if args.bytes and args.proto == "tcp" else args.size
        chunk = payload if tail >= args.size else memoryview(payload)[:tail]
        try:
            if args.proto == "udp":
                sent += sock.sendto(chunk, (args.dst, args.port))
            else:
                # send, not sendall: a timeout after a partial write must not be counted
                # (or repeated) as a whole chunk when the byte count is what matters.
                sent += sock.send(chunk)
        except OSError:
            continue
        seq += 1
    if args.reset and args.proto == "tcp":
        # Close with a reset: no TIME_WAIT, so the same 5-tuple can connect again at once.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    elapsed = time.time() - start
    _write(
        args.report,
        {
            "proto": args.proto,
            "packets": seq,
            "bytes": sent,
            "duration_s": elapsed,
            "rate_bps": sent * 8 / elapsed if elapsed else 0.0,
            "start": start,
            "complete": bool(args.bytes) and sent >= args.bytes,
        },
    )


def burst(args):
    """One datagram from each of ``count`` source ports: that many new 5-tuples."""
    start = time.time()
    for k in range(args.count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", args.first_sport + k))
            sock.sendto(b"\0" * 64, (args.dst, args.port))
        except OSError:
            pass
        finally:
            sock.close()
        if args.interval:
            time.sleep(args.interval)
    _write(args.report, {"sent": args.count, "duration_s": time.time() - start})


def echo(args):
    """Send every UDP datagram back to where it came from, until ``duration`` ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", args.port))
    sock.settimeout(0.2)
    deadline = time.time() + args.duration
    echoed = 0
    while time.time() < deadline:
        try:
            data, peer = sock.recvfrom(65536)
        except TimeoutError:
            continue
        try:
            sock.sendto(data, peer)
            echoed += 1
        except OSError:
            pass
    sock.close()
    _write(args.report, {"port": args.port, "echoed": echoed})


def _round_trip(sock, dst, seq, timeout):
    """Seconds until the echo of datagram ``seq`` comes back, or None after ``timeout``."""
    payload = bytearray(64)
    start = time.perf_counter()
    HEADER.pack_into(payload, 0, seq, time.time(), 0)
    sock.sendto(payload, dst)
    deadline = start + timeout
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return None
        # A late echo of an earlier datagram must not pass for this one.
        if len(data) >= HEADER.size and HEADER.unpack_from(data)[0] == seq:
            return time.perf_counter() - start


def probe(args):
    """Two echoed datagrams per new source port: the first sets the flow up, the second does not.

    The first round trip includes whatever the network does for a new 5-tuple
    (a packet-in, path choice, rule installation); the second, on the same
    5-tuple right after, is the baseline. ``setup = first - second``.
    """
    dst = (args.dst, args.port)
    probes = []
    for k in range(args.count):
        sport = args.first_sport + k
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", sport))
            first = _round_trip(sock, dst, 2 * k, args.timeout)
            second = _round_trip(sock, dst, 2 * k + 1, args.timeout) if first else None
        except OSError:
            first = second = None
        finally:
            sock.close()
        probes.append({"sport": sport, "first_rtt_s": first, "second_rtt_s": second})
        if args.interval:
            time.sleep(args.interval)
    answered = [p for p in probes if p["first_rtt_s"] and p["second_rtt_s"]]
    _write(
        args.report,
        {
            "count": args.count,
            "answered": len(answered),
            "setup_s": [p["first_rtt_s"] - p["second_rtt_s"] for p in answered],
            "probes": probes,
        },
    )


def _write(path, report):
    text = json.dumps(report)
    if path:
        with open(path, "w") as fh:
            fh.write(text)
    else:
        print(text)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="flowgen", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    for mode in ("recv", "send"):
        p = sub.add_parser(mode)
        p.add_argument("--proto", choices=("tcp", "udp"), default="udp")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--duration", type=float, required=True)
        p.add_argument("--report", default="")
    snd = sub.choices["send"]
    snd.add_argument("--dst", required=True)
    snd.add_argument("--sport", type=int, default=0)
    snd.add_argument("--rate", type=float, default=0.0, help="Mbit/s (0 = as fast as possible)")
    snd.add_argument("--size", type=int, default=1200, help="bytes per datagram / write")
    snd.add_argument("--tag", type=int, default=0)
    snd.add_argument("--reset", action="store_true", help="TCP: end with a reset, not a FIN")
    snd.add_argument("--bytes", type=int, default=0, help="stop after this many (0 = duration)")
    snd.add_argument("--start-at", type=float, default=0.0, help="unix time to start sending")
    brs = sub.add_parser("burst")
    brs.add_argument("--dst", required=True)
    brs.add_argument("--port", type=int, required=True)
    brs.add_argument("--count", type=int, default=1000)
    brs.add_argument("--first-sport", type=int, default=30000)
    brs.add_argument("--interval", type=float, default=0.001)
    brs.add_argument("--report", default="")
    ech = sub.add_parser("echo")
    ech.add_argument("--port", type=int, required=True)
    ech.add_argument("--duration", type=float, required=True)
    ech.add_argument("--report", default="")
    prb = sub.add_parser("probe")
    prb.add_argument("--dst", required=True)
    prb.add_argument("--port", type=int, required=True)
    prb.add_argument("--count", type=int, default=300)
    prb.add_argument("--first-sport", type=int, default=33000)
    prb.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for an echo")
    prb.add_argument("--interval", type=float, default=0.005, help="seconds between probes")
    prb.add_argument("--report", default="")
    args = parser.parse_args(argv)
    if args.mode == "burst":
        burst(args)
        return
    if args.mode == "probe":
        if args.count < 1 or args.timeout <= 0:
            parser.error("--count must be >= 1 and --timeout positive")
        probe(args)
        return
    if args.duration <= 0:
        parser.error("--duration must be positive")
    if args.mode == "send" and (args.bytes < 0 or (args.bytes and args.bytes < HEADER.size)):
        parser.error(f"--bytes must be 0 or at least {HEADER.size}")
    {"recv": recv, "send": send, "echo": echo}[args.mode](args)


if __name__ == "__main__":
    main()
