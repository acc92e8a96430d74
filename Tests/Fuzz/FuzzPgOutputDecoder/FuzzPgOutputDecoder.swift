import Foundation
import FuzzReplay
import StarlingPostgres

/// libFuzzer target for the WAL capture decoders: bytes → ``PostgresReplicationMessage/decode(_:)`` (CopyData
/// frames) and ``PgOutputDecoder/decode(_:)`` (pgoutput messages), the latter also on an XLogData's payload.
///
/// Invariants checked with `precondition` (a failure is a crash the fuzzer reports): nothing traps on hostile
/// input; a refusal is `malformedMessage`; a message that decodes re-encodes (with the writer below, which
/// follows the documented formats) to exactly the input bytes — the decoder accounts for every byte and invents
/// nothing; changes checked against a relation cache never trap.
enum PgOutputDecoderFuzz {
    static func run(_ bytes: [UInt8]) {
        if let frame = decodeFrame(bytes), case .xLogData(let data) = frame {
            decodePgOutput(data.payload)
        }
        decodePgOutput(bytes)
    }

    static func decodeFrame(_ bytes: [UInt8]) -> PostgresReplicationMessage? {
        do {
            return try PostgresReplicationMessage.decode(bytes)
        } catch {
            precondition(error.code == .malformedMessage, "frame refused with \(error.code)")
            return nil
        }
    }

    static func decodePgOutput(_ bytes: [UInt8]) {
        let message: PgOutputMessage
        do {
            message = try PgOutputDecoder.decode(bytes)
        } catch {
            precondition(error.code == .malformedMessage, "pgoutput refused with \(error.code)")
            return
        }
        precondition(PgOutputWriter.encode(message) == bytes, "decoded message does not re-encode to its input")
        var cache = PgOutputRelationCache()
        cache.record(message)
        if case .insert(let insert) = message { _ = try? cache.relation(for: insert.relationOID, matching: insert.newTuple) }
    }
}

/// Writes pgoutput v1 messages (the inverse of the decoder, for the round-trip invariant only).
enum PgOutputWriter {
    static func encode(_ message: PgOutputMessage) -> [UInt8] {
        var out: [UInt8] = []
        switch message {
        case .begin(let begin):
            tag("B", &out); int(begin.finalLSN.rawValue, &out); int(begin.commitTime.microsecondsSince2000, &out)
            int(begin.xid, &out)
        case .commit(let commit):
            tag("C", &out); out.append(commit.flags); int(commit.commitLSN.rawValue, &out)
            int(commit.endLSN.rawValue, &out); int(commit.commitTime.microsecondsSince2000, &out)
        case .origin(let origin):
            tag("O", &out); int(origin.originLSN.rawValue, &out); string(origin.name, &out)
        case .relation(let relation):
            tag("R", &out); int(relation.oid, &out); string(relation.namespace, &out); string(relation.name, &out)
            out.append(relation.replicaIdentity.rawValue); int(Int16(relation.columns.count), &out)
            for column in relation.columns {
                out.append(column.flags); string(column.name, &out); int(column.typeOID, &out)
                int(column.typeModifier, &out)
            }
        case .type(let type):
            tag("Y", &out); int(type.oid, &out); string(type.namespace, &out); string(type.name, &out)
        case .insert(let insert):
            tag("I", &out); int(insert.relationOID, &out); tag("N", &out); tuple(insert.newTuple, &out)
        case .update(let update):
            tag("U", &out); int(update.relationOID, &out)
            if let old = update.oldTuple { oldTuple(old, &out) }
            tag("N", &out); tuple(update.newTuple, &out)
        case .delete(let delete):
            tag("D", &out); int(delete.relationOID, &out); oldTuple(delete.oldTuple, &out)
        case .truncate(let truncate):
            tag("T", &out); int(Int32(truncate.relationOIDs.count), &out)
            out.append((truncate.isCascade ? 1 : 0) | (truncate.isRestartIdentity ? 2 : 0))
            for oid in truncate.relationOIDs { int(oid, &out) }
        case .message(let message):
            tag("M", &out); out.append(message.isTransactional ? 1 : 0); int(message.lsn.rawValue, &out)
            string(message.prefix, &out); int(Int32(message.content.count), &out); out += message.content
        }
        return out
    }

    static func oldTuple(_ old: PgOutputMessage.OldTuple, _ out: inout [UInt8]) {
        switch old {
        case .key(let key): tag("K", &out); tuple(key, &out)
        case .full(let full): tag("O", &out); tuple(full, &out)
        }
    }

    static func tuple(_ tuple: PgOutputTuple, _ out: inout [UInt8]) {
        int(Int16(tuple.count), &out)
        for value in tuple.values {
            switch value {
            case .null: tag("n", &out)
            case .unchangedToast: tag("u", &out)
            case .text(let text): tag("t", &out); int(Int32(text.utf8.count), &out); out += Array(text.utf8)
            case .binary(let bytes): tag("b", &out); int(Int32(bytes.count), &out); out += bytes
            }
        }
    }

    static func tag(_ character: Unicode.Scalar, _ out: inout [UInt8]) { out.append(UInt8(ascii: character)) }
    static func string(_ text: String, _ out: inout [UInt8]) { out += Array(text.utf8); out.append(0) }
    static func int<T: FixedWidthInteger>(_ value: T, _ out: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { out.append(contentsOf: $0) }
    }
}

#if FUZZING
/// libFuzzer's driver (LLVM 11+); see FuzzChangeDecoder for why both `main`s are linked.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// Runs one fuzz input.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    PgOutputDecoderFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)))
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
struct ReplayPgOutputDecoder {
    static func main() throws { try FuzzReplay.main(PgOutputDecoderFuzz.run) }
}
#endif
