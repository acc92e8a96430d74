import Foundation
import FuzzReplay
import StarlingCore

/// libFuzzer target for the hub's change decoder and validator: bytes → ``JSONParser`` (the push limits) →
/// ``Change/init(json:requiredRegion:keyColumns:)`` for each change → ``ConflictResolver/decide`` under every
/// policy against an optional `head` from the same document → log entry, verdict and head round-trips.
///
/// Input is any bytes; the interesting shape is `{"changes":[…],"head":{…}}`. Invariants checked with
/// `precondition` (a failure is a crash the fuzzer reports): a decoded change re-encodes and decodes to itself;
/// a verdict and a log entry written by us parse back to the same value; nothing traps on hostile input.
enum ChangeDecoderFuzz {
    static let priorities: RegionPriorities = ["r1": 100, "r2": 50, "r3": 50]
    static let policies: [ConflictPolicy] = [.lww, .priority, .merge, .reject, .manual(provisional: .keepHead), .manual(provisional: .lww)]

    /// Runs one input; returns normally for every input the hub must survive.
    static func run(_ bytes: [UInt8]) {
        guard let document = try? JSONParser(limits: .init(maxDepth: 64, maxBytes: 1 << 20)).parse(bytes) else {
            return
        }
        let head = document["head"].flatMap { try? Head(json: $0) }
        let items: [JSONValue]
        if case .array(let changes)? = document["changes"] { items = changes } else { items = [document] }
        for item in items {
            let region = item["id"]?.stringValue?.split(separator: ":").first.map(String.init)
            guard let change = try? Change(json: item, requiredRegion: region) else { continue }
            roundTrip(change)
            for policy in policies {
                let decision = ConflictResolver.decide(
                    change: change, head: head, policy: policy, priorities: priorities)
                check(decision)
            }
        }
    }

    /// A change survives our own encoding unchanged.
    static func roundTrip(_ change: Change) {
        let text = change.json.serialized()
        guard let again = try? JSONValue(parsing: text) else { preconditionFailure("re-encoded change is not JSON") }
        guard let decoded = try? Change(json: again) else { preconditionFailure("re-encoded change does not decode") }
        precondition(decoded == change, "change round-trip changed the value")
    }

    /// A decision's log entry, verdict and new head are consistent and encode to what decodes back.
    static func check(_ decision: Decision) {
        let seq: Int64 = 7
        if let entry = decision.logEntry(seq: seq) {
            var output: [UInt8] = []
            entry.write(to: &output)
            guard let value = try? JSONValue(parsing: output), let decoded = try? LogEntry(json: value) else {
                preconditionFailure("log entry does not round-trip")
            }
            precondition(decoded == entry, "log entry round-trip changed the value")
        }
        let verdict = decision.verdict(seq: decision.appendsEntry ? seq : nil, conflictID: decision.conflict == nil ? nil : 3)
        var output: [UInt8] = []
        verdict.write(to: &output)
        guard let value = try? JSONValue(parsing: output), let decoded = try? Verdict(json: value) else {
            preconditionFailure("verdict does not round-trip")
        }
        precondition(decoded == verdict, "verdict round-trip changed the value")
        if let head = decision.newHead(seq: seq) {
            guard let decodedHead = try? Head(json: head.json) else { preconditionFailure("head does not round-trip") }
            precondition(decodedHead == head, "head round-trip changed the value")
        }
    }
}

#if FUZZING
/// libFuzzer's driver (LLVM 11+). SwiftPM binds `main` to this module's entry point (`--defsym`) while
/// `-sanitize=fuzzer` links libFuzzer's own `main` too; `ops/fuzz` links with `--allow-multiple-definition`, and
/// whichever `main` wins ends in the driver calling ``fuzzOne(_:_:)``.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// Runs one fuzz input (the driver's callback, and libFuzzer's entry point should its own `main` be linked).
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    ChangeDecoderFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

/// Entry point when built with `-sanitize=fuzzer -D FUZZING` (see `ops/fuzz`): libFuzzer's command line.
@main
struct FuzzMain {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, { data, size in fuzzOne(data, size) }))
    }
}
#else
/// Without libFuzzer: replays the inputs named on the command line (``FuzzReplay``).
@main
struct ReplayChangeDecoder {
    static func main() throws { try FuzzReplay.main(ChangeDecoderFuzz.run) }
}
#endif
