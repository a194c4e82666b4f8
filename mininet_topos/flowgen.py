"""A tiny traffic generator and sink for emulated hosts (standard library only).

One flow is exactly one socket (no side connection, unlike iperf3), which is
what an AI collective's data connection looks like to the network. UDP
datagrams carry a sequence number and a send timestamp so the sink can count
every lost packet and the longest gap; both ends write a JSON report with a
goodput time series.

    python3 flowgen.py recv --proto udp --port 4791 --duration 10 --report r.json
    python3 flowgen.py send --proto udp --dst 10.0.2.1 --port 4791 --sport 40001 \\
        --rate 8 --duration 8 --report s.json
"""

import argparse
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
                seq, _, tag = HEADER.unpack_from(data)
                flow = per_tag.setdefault(
                    tag,
                    {
                        "seqs": set(),
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
                flow["seqs"].add(seq)
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


def send(args):
    proto = socket.SOCK_DGRAM if args.proto == "udp" else socket.SOCK_STREAM
    sock = socket.socket(socket.AF_INET, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.sport:
        sock.bind(("0.0.0.0", args.sport))
    payload = bytearray(args.size)
    start = time.time()
    deadline = start + args.duration
    sent = seq = 0
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
    interval = args.size * 8 / (args.rate * 1e6) if args.rate else 0.0
    next_send = start
    while True:
        now = time.time()
        if now >= deadline:
            break
        if interval:
            if now < next_send:
                time.sleep(min(next_send - now, 0.01))
                continue
            next_send += interval
        HEADER.pack_into(payload, 0, seq, now, args.tag)
        try:
            if args.proto == "udp":
                sock.sendto(payload, (args.dst, args.port))
            else:
                sock.sendall(payload)
        except OSError:
            continue
        seq += 1
        sent += len(payload)
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
    brs = sub.add_parser("burst")
    brs.add_argument("--dst", required=True)
    brs.add_argument("--port", type=int, required=True)
    brs.add_argument("--count", type=int, default=1000)
    brs.add_argument("--first-sport", type=int, default=30000)
    brs.add_argument("--interval", type=float, default=0.001)
    brs.add_argument("--report", default="")
    args = parser.parse_args(argv)
    if args.mode == "burst":
        burst(args)
        return
    if args.duration <= 0:
        parser.error("--duration must be positive")
    recv(args) if args.mode == "recv" else send(args)


if __name__ == "__main__":
    main()
