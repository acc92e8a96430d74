/// Many C strings in one flat buffer, for libpq calls that take `const char * const *`.
///
/// Each string is stored NUL-terminated; a nil entry becomes a NULL pointer (SQL NULL for parameters).
/// `withPointers` hands out pointers that are valid only inside its closure.
struct CStringBlock {
    private var bytes: [UInt8] = []
    /// Start offset of each entry in `bytes`, or -1 for a NULL entry.
    private var starts: [Int] = []

    var count: Int { starts.count }

    /// Appends a string's bytes (which must not contain NUL).
    mutating func append(_ string: some Collection<UInt8>) {
        starts.append(bytes.count)
        bytes.append(contentsOf: string)
        bytes.append(0)
    }

    /// Appends an entry filled in by `encode` (which must not write NUL).
    mutating func append(encoding encode: (inout [UInt8]) throws(PostgresError) -> Void) throws(PostgresError) {
        let start = bytes.count
        do {
            try encode(&bytes)
        } catch {
            bytes.removeSubrange(start...)
            throw error
        }
        starts.append(start)
        bytes.append(0)
    }

    /// Appends a NULL entry.
    mutating func appendNull() {
        starts.append(-1)
    }

    mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        starts.removeAll(keepingCapacity: true)
    }

    /// Calls `body` with one pointer per entry (nil for NULL entries).
    func withPointers<R>(_ body: ([UnsafePointer<CChar>?]) throws(PostgresError) -> R) throws(PostgresError) -> R {
        try bytes.withUnsafeBufferPointer { (buffer) throws(PostgresError) -> R in
            let base = buffer.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }
            let pointers = starts.map { start -> UnsafePointer<CChar>? in
                guard start >= 0, let base else { return nil }
                return base + start
            }
            return try body(pointers)
        }
    }

    func withPointers<R>(_ body: ([UnsafePointer<CChar>?]) -> R) -> R {
        bytes.withUnsafeBufferPointer { buffer -> R in
            let base = buffer.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }
            let pointers = starts.map { start -> UnsafePointer<CChar>? in
                guard start >= 0, let base else { return nil }
                return base + start
            }
            return body(pointers)
        }
    }
}

/// Statement parameters encoded once in text format, ready for `PQexecParams` / `PQsendQueryParams`.
struct EncodedParameters {
    private var block = CStringBlock()
    /// Each parameter's type OID (0: the server infers it).
    private(set) var types: [UInt32] = []

    init(_ params: [PostgresValue]) throws(PostgresError) {
        types.reserveCapacity(params.count)
        for param in params {
            types.append(param.typeOID)
            if param.isNull {
                block.appendNull()
            } else {
                try block.append { (buffer) throws(PostgresError) in try param.encodeText(into: &buffer) }
            }
        }
    }

    /// Calls `body` with libpq's parameter arrays: types, values, lengths (nil: text) and formats (nil: text).
    func withPointers<R>(
        _ body: (
            UnsafePointer<UInt32>?, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?,
            UnsafePointer<Int32>?
        ) -> R
    ) -> R {
        block.withPointers { values in
            types.withUnsafeBufferPointer { types in
                values.withUnsafeBufferPointer { values in
                    body(types.baseAddress, values.baseAddress, nil, nil)
                }
            }
        }
    }
}
