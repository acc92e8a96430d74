#!/usr/bin/env python3
"""Runs a test command under a watchdog, so a hung suite fails with a diagnosis instead of hanging CI.

    watch-tests.py --name PHASE --stall SECONDS --limit SECONDS --dump-dir DIR -- swift test ...

The command's output (stdout and stderr, merged) is passed through line by line. The watchdog follows Swift
Testing's events ("◇ Test X started." / "✔ Test X passed ..." / "✘ Test X failed ...") to know which tests are
running. When the command prints nothing for --stall seconds, or runs longer than --limit seconds, it:
  1. prints the tests (and suites) that started and have not ended,
  2. dumps every thread's stack of each test process under it (gdb, batch mode) into DIR and prints the frames
     that name our code, thread by thread,
  3. kills the command and every process below it and exits 124.
Silent for --peek seconds (shorter), it only looks: it prints the tests running and the threads running Swift
tasks (a blocking call there holds one of the cooperative pool's threads, one per core, and two of them starve
every other test, whose time limits then run out together, long after the cause is gone) and goes on; those
lines go to DIR/failures.txt too when the run fails. Otherwise it exits with the command's status. A CI run that only shows the tail of the output then shows where
it stopped. Every failure line (a test or suite that failed, and the issues it recorded) is also appended to
DIR/failures.txt, which ops/test prints again at its very end: a CI log keeps only its tail. Stdlib only: it runs before any venv exists.
"""
import argparse
import os
import re
import select
import signal
import subprocess
import sys
import time

EVENT = re.compile(r"^(◇|✔|✘|􀟈|􁁛|􀢄) (Test|Suite) (.+?) (started\.|passed|failed|with \d+)")


def children_of(pid):
    """Every descendant of pid (from /proc/*/stat), depth first."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in parents.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def command_line(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def demangle(lines):
    """Swift symbols made readable by the toolchain's demangler (unchanged when it is missing)."""
    try:
        result = subprocess.run(["swift", "demangle", "--simplified", "--compact"], input="\n".join(lines),
                                capture_output=True, text=True, timeout=60)
        if result.returncode == 0:
            return result.stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return lines


def interesting_threads(text):
    """The threads that can explain a hang: those running a Swift task (a blocking call there holds one of the
    cooperative pool's threads, one per core) and those in test code; each with its frames that name our code."""
    out, thread, frames, task = [], None, [], False

    def flush():
        if thread and frames and (task or any("Tests" in frame for frame in frames)):
            out.append(f"  {thread}{' (a Swift task)' if task else ''}")
            out.extend(f"      {frame}" for frame in frames[:8])

    for line in text.splitlines():
        if line.startswith("Thread "):
            flush()
            thread, frames, task = line[:90], [], False
        elif line.startswith("#"):
            if "swift_job_run" in line or "runJobInEstablishedExecutorContext" in line:
                task = True
            elif re.search(r"Starling|Tests|EndToEnd|Deployment", line):
                call = re.sub(r"^#\d+\s+(0x[0-9a-f]+ in )?", "", line)
                call = re.sub(r" \(.*?\) at /.*/", " at ", call)
                frames.append(call[:200])
    flush()
    return demangle(out[:60])


def dump_stacks(root_pid, dump_dir, name):
    """gdb's backtrace of every thread of each test process below root_pid; returns printable summary lines."""
    lines = []
    targets = [p for p in children_of(root_pid) if ".xctest" in command_line(p) or "PackageTests" in command_line(p)]
    if not targets:
        targets = children_of(root_pid)[:1]
    for pid in targets:
        path = os.path.join(dump_dir, f"stacks-{name}-{pid}.txt")
        try:
            result = subprocess.run(
                ["gdb", "-p", str(pid), "-batch", "-nx", "-ex", "set pagination off",
                 "-ex", "thread apply all bt 40"],
                capture_output=True, text=True, timeout=180)
            text = result.stdout + result.stderr
        except (OSError, subprocess.TimeoutExpired) as error:
            lines.append(f"watchdog: no stacks of {pid}: {error}")
            continue
        with open(path, "w") as f:
            f.write(text)
        lines.append(f"watchdog: stacks of {pid} ({command_line(pid)[:100]}) in {path}")
        lines.extend(interesting_threads(text))
    return lines


def record_failures(dump_dir, name, lines):
    """Appends a phase's failure lines to DIR/failures.txt (nothing when it had none)."""
    if not lines:
        return
    with open(os.path.join(dump_dir, "failures.txt"), "a") as f:
        f.write(f"--- {name}\n" + "\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="tests")
    parser.add_argument("--stall", type=float, default=600)
    parser.add_argument("--limit", type=float, default=3600)
    parser.add_argument("--peek", type=float, default=45)
    parser.add_argument("--dump-dir", default=".")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    os.makedirs(args.dump_dir, exist_ok=True)

    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    running = {}
    start = last_output = time.monotonic()
    pending = b""
    failures = []
    peeks = []
    peeked = False
    reason = None
    out = sys.stdout.buffer
    while True:
        now = time.monotonic()
        if now - last_output > args.stall:
            reason = f"no output for {int(now - last_output)} s"
        elif now - start > args.limit:
            reason = f"still running after {int(now - start)} s (limit {int(args.limit)} s)"
        if reason:
            break
        if not peeked and now - last_output > args.peek and len(peeks) < 200:
            peeked = True
            report = [f"watchdog ({args.name}) peek: no output for {int(now - last_output)} s; running:"]
            report += [f"  {key} (for {int(now - since)} s)"
                       for key, since in sorted(running.items(), key=lambda item: item[1])[:12]]
            report += dump_stacks(process.pid, args.dump_dir, f"{args.name}-peek")
            peeks += report
            out.write(("\n".join(report) + "\n").encode())
            out.flush()
        ready, _, _ = select.select([process.stdout], [], [], 5)
        if not ready:
            if process.poll() is not None:
                break
            continue
        chunk = os.read(process.stdout.fileno(), 65536)
        if not chunk:
            break
        last_output = time.monotonic()
        peeked = False
        out.write(chunk)
        out.flush()
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            line = raw.decode(errors="replace")
            if line.startswith("✘") and len(failures) < 200:
                failures.append(line)
            match = EVENT.match(line)
            if not match or match.group(3).startswith("case "):
                continue
            key = f"{match.group(2)} {match.group(3)}"
            if match.group(4) == "started.":
                running[key] = time.monotonic()
            else:
                running.pop(key, None)

    if reason is None:
        status = process.wait()
        record_failures(args.dump_dir, args.name, failures + (peeks if status != 0 else []))
        return status

    report = dump_stacks(process.pid, args.dump_dir, args.name)
    oldest = sorted(running.items(), key=lambda item: item[1])
    report.append(f"watchdog ({args.name}): {reason}; {len(oldest)} tests and suites started and not ended, "
                  "the longest running first:")
    for key, since in oldest[:20]:
        report.append(f"  {key} (for {int(time.monotonic() - since)} s)")
    # Every descendant, found before any dies: children the tests spawned in process groups of their own (agents,
    # hubs) would otherwise live on as orphans and load the next phase.
    for pid in [process.pid] + children_of(process.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()
    report.append(f"watchdog ({args.name}): killed the test run: {reason}")
    record_failures(args.dump_dir, args.name, failures + peeks + report[-22:])
    out.write(("\n".join(report) + "\n").encode())
    out.flush()
    return 124


if __name__ == "__main__":
    sys.exit(main())
