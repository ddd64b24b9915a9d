#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/TARGET/) from
the frames the Node reference sent (tests/data/vectors.json), so that every
target starts from real traffic rather than from nothing:

    tests/fuzz/seed_corpus.py        (re)writes the seed files, seed-*

Files the fuzzer found and kept (scripts/fuzz.sh --merge) live next to them
under their content hashes and are left alone.
"""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "..", "data", "vectors.json")


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def frames(payloads):
    return b"".join(varint(len(p)) + p for p in (bytes.fromhex(h) for h in payloads))


def streams(vectors):
    """(name, guest_to_host bytes, host_to_guest bytes) of every scenario."""
    for scenario in vectors["scenarios"]:
        yield scenario["name"], frames(scenario["guest_to_host"]), frames(scenario["host_to_guest"])
    for scenario in vectors["retry_scenarios"]:
        for i, connection in enumerate(scenario["connections"]):
            yield (f"{scenario['name']}-{i}", frames(connection.get("guest_to_host", [])),
                   frames(connection.get("host_to_guest", [])))


def write(target, name, data):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data)


def main():
    with open(VECTORS) as f:
        vectors = json.load(f)
    for name, to_host, to_guest in streams(vectors):
        # fuzz_frames: the first byte says where the stream is split in two.
        write("fuzz_frames", name + "-guest", bytes([len(to_host) // 2 % 256]) + to_host)
        write("fuzz_frames", name + "-host", bytes([len(to_guest) // 2 % 256]) + to_guest)
        # fuzz_host_session: the first byte picks the store (even memory, odd SQLite).
        write("fuzz_host_session", name + "-memory", b"\x00" + to_host)
        write("fuzz_host_session", name + "-sqlite", b"\x01" + to_host)
        write("fuzz_guest_session", name, to_guest)
    for i, text in enumerate(["tcp://127.0.0.1:9000", "tls://db.example.com:9443", "unix:/tmp/db.sock",
                              "unix:@abstract", "tcp://[::1]:80", "{\"a\":[1,2]}", "68656c6c6f", "aGVsbG8="]):
        write("fuzz_parsing", str(i), text.encode())


if __name__ == "__main__":
    main()
