#!/usr/bin/env python3
"""Writes the seed corpora in Tools/fuzz/corpus/<target>/: a few small valid (and a few nearly
valid) inputs per fuzz target, in the input layouts the targets' headers describe. Deterministic:
running it again rewrites the same files.   python3 Tools/fuzz/make-seeds.py"""
import os, struct

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    os.makedirs(os.path.join(root, target), exist_ok=True)
    with open(os.path.join(root, target, name), "wb") as f:
        f.write(data)


def csum(data, initial=0):
    if len(data) % 2:
        data += b"\0"
    s = initial + sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def eth(dst, src, ethertype, vlan=None):
    tag = struct.pack("!HH", 0x8100, vlan) if vlan is not None else b""
    return bytes(dst) + bytes(src) + tag + struct.pack("!H", ethertype)


MAC_A = [0x02, 0, 0, 0, 0, 0x01]
MAC_B = [0x02, 0, 0, 0, 0, 0x31]
V4_A, V4_B = bytes([10, 0, 1, 1]), bytes([10, 0, 1, 2])
V6_A = bytes.fromhex("20010db8000000000000000000000001")
V6_B = bytes.fromhex("20010db8000000000000000000000002")


def l4(proto, src, dst, header, payload):
    """TCP/UDP header + payload with its checksum filled in (header's checksum field zero)."""
    seg = bytearray(header + payload)
    pseudo = sum(struct.unpack("!%dH" % (len(src + dst) // 2), src + dst)) + proto + len(seg)
    at = 16 if proto == 6 else 6
    value = csum(bytes(seg), pseudo)
    if proto == 17 and value == 0:
        value = 0xFFFF
    seg[at:at + 2] = struct.pack("!H", value)
    return bytes(seg)


def tcp_header(seq, flags=0x10, ack=1000, window=512, options=b""):
    offset = (20 + len(options)) // 4
    return struct.pack("!HHIIBBHHH", 40000, 5201, seq, ack, offset << 4, flags, window, 0, 0) + options


def ipv4(proto, body, ident=1, src=V4_A, dst=V4_B):
    header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), ident, 0x4000, 64, proto, 0, src, dst))
    header[10:12] = struct.pack("!H", csum(bytes(header)))
    return bytes(header) + body


def ipv6(proto, body, src=V6_A, dst=V6_B):
    return struct.pack("!IHBB16s16s", 0x60000000, len(body), proto, 64, src, dst) + body


def tcp4_frame(seq, payload, flags=0x10, vlan=None):
    ip = ipv4(6, l4(6, V4_A, V4_B, tcp_header(seq, flags), payload))
    return eth(MAC_B, MAC_A, 0x0800, vlan) + ip


def tcp6_frame(seq, payload, flags=0x10):
    return eth(MAC_B, MAC_A, 0x86DD) + ipv6(6, l4(6, V6_A, V6_B, tcp_header(seq, flags), payload))


def udp4_frame(payload):
    header = struct.pack("!HHHH", 40000, 53, 8 + len(payload), 0)
    return eth(MAC_B, MAC_A, 0x0800) + ipv4(17, l4(17, V4_A, V4_B, header, payload))


def virtio(gso_type, header_length, gso_size, flags=1, csum_start=34, csum_offset=16):
    return struct.pack("<BBHHHHH", flags, gso_type, header_length, gso_size, csum_start, csum_offset, 0)


def payload(n, seed=0):
    return bytes((i * 7 + seed) & 0xFF for i in range(n))


# Only its own files are rewritten: inputs a campaign found (regressions) stay beside them.

# decapsulate: [sender][GRO segment size][VXLAN header][inner frame]
def vxlan(vni, frame, flags=0x08):
    return struct.pack("!BBBBI", flags, 0, 0, 0, vni << 8) + frame

inner = eth(MAC_A, MAC_B, 0x88B5) + payload(50)
write("decapsulate", "vni42", bytes([0, 0]) + vxlan(42, inner))
write("decapsulate", "vni43-allowed", bytes([0, 0]) + vxlan(43, inner))
write("decapsulate", "vni43-refused", bytes([2, 0]) + vxlan(43, inner))
write("decapsulate", "vni43-oversize", bytes([0, 0]) + vxlan(43, eth(MAC_A, MAC_B, 0x88B5) + payload(400)))
write("decapsulate", "unknown-vni", bytes([0, 0]) + vxlan(7, inner))
write("decapsulate", "flag-clear", bytes([0, 0]) + vxlan(42, inner, flags=0))
write("decapsulate", "static-conflict", bytes([0, 0]) + vxlan(42, eth(MAC_A, [2, 0, 0, 0, 0, 0x21], 0x88B5) + payload(20)))
write("decapsulate", "gro-two", bytes([3, 72]) + vxlan(42, inner) + vxlan(42, inner))
write("decapsulate", "tcp-ipv4", bytes([1, 0]) + vxlan(42, tcp4_frame(1, payload(30))))

# segmenter: [virtio header][super-frame]
frame = tcp4_frame(1000, payload(300))
write("segmenter", "tcp4", virtio(1, 54, 100) + frame)
frame = tcp4_frame(1000, payload(250), flags=0x18 | 0x01, vlan=5)
write("segmenter", "tcp4-vlan-fin", virtio(1, 58, 64, csum_start=38) + frame)
frame = tcp6_frame(7, payload(200))
write("segmenter", "tcp6", virtio(4, 74, 90, csum_start=54) + frame)
frame = udp4_frame(payload(150))
write("segmenter", "udp4", virtio(5, 42, 64, csum_offset=6) + frame)

# coalescer: per frame [tag][length, 2 bytes][frame]
def frames(*items):
    out = b""
    for tag, f in items:
        out += bytes([tag]) + struct.pack("!H", len(f)) + f
    return out

write("coalescer", "tcp4-run", frames(*[(0, tcp4_frame(1 + 100 * k, payload(100, k))) for k in range(4)]))
write("coalescer", "tcp4-short-last-psh", frames(
    (0, tcp4_frame(1, payload(80))), (0, tcp4_frame(81, payload(80))), (0, tcp4_frame(161, payload(30), flags=0x18))))
write("coalescer", "tcp6-run", frames(*[(0, tcp6_frame(5 + 60 * k, payload(60, k))) for k in range(3)]))
write("coalescer", "two-networks", frames(
    (0, tcp4_frame(1, payload(40))), (1, tcp4_frame(41, payload(40))), (1, tcp4_frame(81, payload(40)))))
bad = bytearray(tcp4_frame(101, payload(100)))
bad[-1] ^= 0xFF
write("coalescer", "bad-checksum", frames((0, tcp4_frame(1, payload(100))), (0, bytes(bad)), (0, tcp4_frame(201, payload(100)))))

# config: YAML files
write("config", "minimal.yaml", b"underlay:\n  local: 10.0.0.1\nnetworks:\n  - { vni: 1, tap: vx1 }\n")
write("config", "documented.yaml", b"""underlay:
  local: 10.0.0.1
  port: 4789
  source_ports: 49152-65535
  mtu: auto
workers: auto
offloads: true
networks:
  - vni: 42
    tap: vx42
    mtu: auto
    address: 192.168.42.1/24
    learning: true
    ageing: 300
    max_entries: 16384
    flood: [10.0.0.2, 10.0.0.3]
    allow_from: [10.0.0.0/8]
    fdb:
      - { mac: "02:00:00:00:00:02", remote: 10.0.0.2 }
control:
  enabled: true
  listen: 127.0.0.1:4790
""")
write("config", "ipv6-two-vnis.yaml", b"""underlay: { local: "2001:db8::1", port: 4789 }
networks:
  - vni: 100
    tap: vx100
    flood: ["2001:db8::2"]
  - vni: 200
    tap: vx200
    learning: false
""")
write("config", "bad-vni.yaml", b"underlay:\n  local: 10.0.0.1\nnetworks:\n  - vni: 16777216\n    tap: vx1\n")

# framelayout: one Ethernet frame
write("framelayout", "tcp4", tcp4_frame(1, payload(20)))
write("framelayout", "tcp4-vlan", tcp4_frame(1, payload(20), vlan=7))
qinq = bytes(MAC_B) + bytes(MAC_A) + struct.pack("!HHHHH", 0x88A8, 100, 0x8100, 7, 0x0800) + tcp4_frame(1, payload(8))[14:]
write("framelayout", "tcp4-qinq", qinq)
options = bytearray(struct.pack("!BBHHHBBH4s4s", 0x46, 0, 24 + 8, 1, 0, 64, 17, 0, V4_A, V4_B) + b"\x01\x01\x01\x00")
write("framelayout", "udp4-ip-options", eth(MAC_B, MAC_A, 0x0800) + bytes(options) + struct.pack("!HHHH", 1, 2, 8, 0))
fragment = bytearray(tcp4_frame(1, payload(20)))
fragment[14 + 6:14 + 8] = struct.pack("!H", 0x2000)
write("framelayout", "tcp4-more-fragments", bytes(fragment))
write("framelayout", "tcp4-padded", tcp4_frame(1, b"") + bytes(6))
write("framelayout", "tcp6", tcp6_frame(1, payload(20)))
hop = bytes([60, 0]) + bytes(6)            # hop-by-hop, then destination options
dest = bytes([6, 1]) + bytes(14)           # destination options (16 bytes), then TCP
tcp = l4(6, V6_A, V6_B, tcp_header(1), payload(8))
write("framelayout", "tcp6-extension-headers", eth(MAC_B, MAC_A, 0x86DD) + ipv6(0, hop + dest + tcp))
write("framelayout", "udp6-fragment-header", eth(MAC_B, MAC_A, 0x86DD) + ipv6(44, bytes([17, 0, 0, 1, 0, 0, 0, 1]) + bytes(16)))
write("framelayout", "arp", eth([0xFF] * 6, MAC_A, 0x0806) + bytes(28))
write("framelayout", "ipv4-total-length-too-long", tcp4_frame(1, payload(20))[:-4])

# control: [method: 0 GET, 1 POST, 2 DELETE, 3 PUT, 4 PATCH, 5 HEAD][target]\n[body]
def request(method, target, body=b""):
    return bytes([["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD"].index(method)]) + target.encode() + b"\n" + body

write("control", "get-stats", request("GET", "/v1/stats"))
write("control", "get-fdb", request("GET", "/v1/networks/42/fdb"))
write("control", "add-static", request("POST", "/v1/networks/42/fdb", b'{"mac": "02:00:00:00:00:02", "remote": "198.18.0.2"}'))
write("control", "add-static-ips", request(
    "POST", "/v1/networks/43/fdb", b'{"mac": "02:00:00:00:00:03", "remote": "198.18.0.3", "ips": ["192.168.42.3", "fd00::3"]}'))
write("control", "add-static-unknown-field", request("POST", "/v1/networks/42/fdb", b'{"mac": "02:00:00:00:00:02", "remote": "198.18.0.2", "x": 1}'))
write("control", "add-static-multicast", request("POST", "/v1/networks/42/fdb", b'{"mac": "01:00:5e:00:00:01", "remote": "198.18.0.2"}'))
write("control", "delete-static", request("DELETE", "/v1/networks/42/fdb/02:00:00:00:00:02"))
write("control", "delete-static-percent", request("DELETE", "/v1/networks/42/fdb/02%3A00%3A00%3A00%3A00%3A02"))
write("control", "flush", request("POST", "/v1/networks/42/fdb/flush", b"{}"))
write("control", "add-flood", request("POST", "/v1/networks/42/flood", b'{"remote": "198.18.0.4"}'))
write("control", "add-flood-ipv6", request("POST", "/v1/networks/42/flood", b'{"remote": "2001:db8::4"}'))
write("control", "delete-flood", request("DELETE", "/v1/networks/43/flood/198.18.0.4"))
write("control", "vni-not-served", request("GET", "/v1/networks/7/flood"))
write("control", "capture-file", request(
    "POST", "/v1/capture", b'{"file": "x.pcap", "points": ["inner", "outer"], "vni": 42, "filter": "icmp", "snaplen": 128, "rotate_bytes": 100000, "rotate_files": 3}'))
write("control", "capture-path", request("POST", "/v1/capture", b'{"file": "../x.pcap"}'))
write("control", "capture-stop", request("DELETE", "/v1/capture"))
write("control", "capture-stream", request("GET", "/v1/capture/stream?points=outer,drop&vni=43&remote=198.18.0.2&count=10&duration=5"))
write("control", "method-not-allowed", request("PUT", "/v1/networks/42/fdb", b"{}"))
write("control", "bad-percent", request("GET", "/v1/networks/4%2/fdb"))
