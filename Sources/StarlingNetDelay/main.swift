import Glibc
import StarlingProxy

// starling-netdelay: a TCP proxy on 127.0.0.1 that adds a fixed round-trip time to every connection through it
// (half of it each way, pipelined: a latency, not a bandwidth limit), for benchmarks over an emulated WAN on a
// kernel without netem. A tool beside `starling`, never part of it; the proxy is StarlingProxy's FaultProxy.
//
//   starling-netdelay --listen PORT --upstream PORT --rtt-ms MS
//
// Prints `listening on 127.0.0.1:PORT upstream 127.0.0.1:PORT rtt_ms MS` once ready; runs until SIGINT or
// SIGTERM, then prints the connections accepted and the bytes forwarded.

/// A command-line mistake: the message and the usage go to stderr, exit status 2.
struct UsageError: Error {
    let message: String
}

/// Writes `line` and a newline to `fd` at once (unbuffered: the bench waits for the ready line).
func emit(_ line: String, to fd: Int32 = STDOUT_FILENO) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}

let usage = "usage: starling-netdelay --listen PORT --upstream PORT --rtt-ms MS"

/// The options, parsed from `arguments` (without the program name).
func parse(_ arguments: [String]) throws(UsageError) -> (listen: Int, upstream: Int, rttMs: Int) {
    var values: [String: Int] = [:]
    var rest = arguments[...]
    while let name = rest.popFirst() {
        guard ["--listen", "--upstream", "--rtt-ms"].contains(name) else {
            throw UsageError(message: "unknown option \(name)")
        }
        guard let text = rest.popFirst(), let value = Int(text), value >= 0 else {
            throw UsageError(message: "\(name) needs a non-negative integer")
        }
        values[name] = value
    }
    guard let listen = values["--listen"], let upstream = values["--upstream"], let rtt = values["--rtt-ms"],
        listen <= 65535, (1...65535).contains(upstream), rtt <= 60_000
    else { throw UsageError(message: "--listen (0-65535), --upstream (1-65535) and --rtt-ms (0-60000) are required") }
    return (listen, upstream, rtt)
}

let options: (listen: Int, upstream: Int, rttMs: Int)
do {
    options = try parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    emit("starling-netdelay: \(error.message)\n\(usage)", to: STDERR_FILENO)
    exit(2)
}

// The signals are blocked before any thread starts (threads inherit the mask), so only `sigwait` sees them.
var signals = sigset_t()
sigemptyset(&signals)
sigaddset(&signals, SIGINT)
sigaddset(&signals, SIGTERM)
pthread_sigmask(SIG_BLOCK, &signals, nil)

// An odd round trip splits into a one-way delay in microseconds (each direction gets half).
let oneWay = Duration.microseconds(options.rttMs * 500)
let proxy: FaultProxy
do {
    proxy = try FaultProxy(
        listenPort: options.listen, upstreamPort: options.upstream, faults: FaultProxy.Faults(delay: oneWay))
} catch {
    emit("starling-netdelay: \(error)", to: STDERR_FILENO)
    exit(1)
}
emit("listening on 127.0.0.1:\(proxy.port) upstream 127.0.0.1:\(options.upstream) rtt_ms \(options.rttMs)")

var received: Int32 = 0
sigwait(&signals, &received)
await proxy.stop()
let counters = proxy.counters
emit("stopped: accepted \(counters.accepted) bytes_forwarded \(counters.bytesForwarded)")
