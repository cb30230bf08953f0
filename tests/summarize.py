#!/usr/bin/python3
"""tests/summarize.py - turn meson and pytest results into counts and the final summary line.

  summarize.py meson LOG.json NAME   -> "P passed, F failed, S skipped NAME" (exit 1 if F)
  summarize.py junit FILE.xml NAME   -> same, from pytest's JUnit XML
  summarize.py total FILE.count...   -> the closing "N passed, N failed, N skipped"
"""
import json
import re
import sys
import xml.etree.ElementTree as ET


def line(p, f, s, name):
    print(f"{p} passed, {f} failed, {s} skipped {name}")
    return 1 if f else 0


def meson(path, name):
    p = f = s = 0
    try:
        with open(path) as fh:
            for raw in fh:
                r = json.loads(raw)
                res = r.get("result")
                if res in ("OK", "EXPECTEDFAIL"):
                    p += 1
                elif res == "SKIP":
                    s += 1
                else:
                    f += 1
                    print(f"FAILED {name}: {r.get('name')} ({res})", file=sys.stderr)
    except OSError:
        f += 1
    if p + f + s == 0:
        f = 1  # no test ran at all is a failure
    return line(p, f, s, name)


def junit(path, name):
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return line(0, 1, 0, name)
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    t = f = s = 0
    for su in suites:
        t += int(su.get("tests", 0))
        f += int(su.get("failures", 0)) + int(su.get("errors", 0))
        s += int(su.get("skipped", 0))
    if t == 0:
        f = 1
    return line(t - f - s, f, s, name)


def total(paths):
    p = f = s = 0
    for path in paths:
        with open(path) as fh:
            m = re.match(r"(\d+) passed, (\d+) failed, (\d+) skipped", fh.read())
        if m:
            p += int(m.group(1)); f += int(m.group(2)); s += int(m.group(3))
        else:
            f += 1
    print(f"{p} passed, {f} failed, {s} skipped")
    return 1 if f else 0


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "meson":
        sys.exit(meson(sys.argv[2], sys.argv[3]))
    if kind == "junit":
        sys.exit(junit(sys.argv[2], sys.argv[3]))
    sys.exit(total(sys.argv[2:]))
