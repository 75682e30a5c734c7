#!/usr/bin/env python3
"""Send trains of VXLAN datagrams, each carrying one segment of an inner TCP stream, with one
segment per train corrupted, and with the outer UDP checksum either zero or computed.

    vxlan_tcp_train.py --from 198.18.0.1 --to 198.18.0.2 --vni 42 --inner-mac 02:..:02 \\
        --inner-to 198.19.0.2 --trains 8 --segments 8 --corrupt 3 --outer-checksum computed

The segments of a train follow one another in sequence (ACK only, 1000 bytes of payload each,
same headers), so a receiver's coalescer would merge them. Segment --corrupt of every train has
one payload byte flipped:
  --outer-checksum zero      the outer UDP checksum is 0 (IPv4: "none"), so the flip reaches the
                             receiving VTEP; only the inner TCP checksum can catch it;
  --outer-checksum computed  the outer checksum is computed first, then the byte flipped: the
                             receiving kernel's UDP checksum must drop the datagram.
Sent from a raw IPPROTO_UDP socket bound to --from (the kernel adds the IPv4 header and leaves
the UDP header, checksum included, as given). Prints "sent N datagrams".
"""

import argparse
import socket
import struct
import sys


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def mac(text):
    parts = bytes(int(p, 16) for p in text.split(":"))
    if len(parts) != 6:
        raise argparse.ArgumentTypeError(f"{text} is not a MAC address")
    return parts


def segment(args, seq, payload, ident):
    source = socket.inet_aton(args.inner_from)
    destination = socket.inet_aton(args.inner_to)
    tcp = struct.pack("!HHIIBBHHH", args.inner_source_port, args.inner_port, seq, 7777, 5 << 4, 0x10, 502, 0, 0)
    pseudo = source + destination + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp + payload)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), ident, 0x4000, 64, 6, 0,
                     source, destination)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    ethernet = args.inner_mac + args.inner_source_mac + struct.pack("!H", 0x0800)
    return ethernet + ip + tcp + payload


def datagram(args, frame, corrupt):
    vxlan = struct.pack("!B3xI", 0x08, args.vni << 8)
    body = vxlan + frame
    length = 8 + len(body)
    udp = struct.pack("!HHHH", args.source_port, args.port, length, 0)
    if args.outer_checksum == "computed":
        pseudo = (socket.inet_aton(args.source) + socket.inet_aton(args.to)
                  + struct.pack("!BBH", 0, 17, length))
        value = checksum(pseudo + udp + body) or 0xFFFF
        udp = udp[:6] + struct.pack("!H", value)
    packet = bytearray(udp + body)
    if corrupt:
        # A byte in the middle of the inner TCP payload, after every checksum was written.
        packet[-500] ^= 0x20
    return bytes(packet)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="source", required=True, help="this host's underlay address (IPv4)")
    parser.add_argument("--to", required=True, help="the receiving VTEP's underlay address (IPv4)")
    parser.add_argument("--port", type=int, default=4789)
    parser.add_argument("--source-port", type=int, default=50123)
    parser.add_argument("--vni", type=int, default=42)
    parser.add_argument("--inner-mac", type=mac, required=True, help="the receiving TAP's MAC")
    parser.add_argument("--inner-source-mac", type=mac, default=mac("02:00:00:00:0c:09"))
    parser.add_argument("--inner-from", default="198.19.0.9")
    parser.add_argument("--inner-to", required=True)
    parser.add_argument("--inner-port", type=int, default=9)
    parser.add_argument("--inner-source-port", type=int, default=40009)
    parser.add_argument("--trains", type=int, default=8)
    parser.add_argument("--segments", type=int, default=8, help="segments per train")
    parser.add_argument("--corrupt", type=int, default=3, help="index of the corrupted segment in each train")
    parser.add_argument("--outer-checksum", choices=["zero", "computed"], required=True)
    args = parser.parse_args()

    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
    sock.bind((args.source, 0))
    seq = 100000
    sent = 0
    packets = []
    for train in range(args.trains):
        for k in range(args.segments):
            payload = bytes((train * 31 + k * 7 + i) & 0xFF for i in range(1000))
            frame = segment(args, seq, payload, 0x100 + sent + len(packets))
            packets.append(datagram(args, frame, corrupt=(k == args.corrupt)))
            seq = (seq + len(payload)) & 0xFFFFFFFF
        # A gap in sequence between trains: each train is a group of its own.
        seq = (seq + 100000) & 0xFFFFFFFF
    for packet in packets:
        sock.sendto(packet, (args.to, 0))
        sent += 1
    print(f"sent {sent} datagrams", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
