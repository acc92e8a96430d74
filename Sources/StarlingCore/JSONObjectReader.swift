/// Reads typed, required or optional members out of a wire object, throwing a ``CoreError`` that names the
/// member and the expectation. Internal helper of the wire types' `init(json:)`.
struct JSONObjectReader {
    let object: JSONObject
    let code: CoreError.Code
    /// Field path prefix for nested objects (`"winner"`), empty at the top.
    let path: String

    /// Fails unless `value` is an object; `what` names the value in the message (`"a change"`).
    init(_ value: JSONValue, what: String, code: CoreError.Code, path: String = "") throws(CoreError) {
        guard case .object(let object) = value else {
            throw CoreError(
                code: code, message: "expected \(what) to be a JSON object", field: path.isEmpty ? nil : path)
        }
        self.object = object
        self.code = code
        self.path = path
    }

    func fieldPath(_ name: String) -> String { path.isEmpty ? name : path + "." + name }

    func failure(_ name: String, _ message: String) -> CoreError {
        CoreError(code: code, message: message, field: fieldPath(name))
    }

    func value(_ name: String) throws(CoreError) -> JSONValue {
        guard let value = object[name] else { throw failure(name, "missing required field \"\(name)\"") }
        return value
    }

    /// A required string; `maxBytes` bounds its UTF-8 length, and it must not be empty.
    func string(_ name: String, maxBytes: Int = 1024) throws(CoreError) -> String {
        guard case .string(let text) = try value(name) else { throw failure(name, "\"\(name)\" must be a string") }
        guard !text.isEmpty else { throw failure(name, "\"\(name)\" must not be empty") }
        guard text.utf8.count <= maxBytes else {
            throw failure(name, "\"\(name)\" is longer than \(maxBytes) bytes")
        }
        return text
    }

    /// An optional string: absent or null gives `nil`.
    func optionalString(_ name: String) throws(CoreError) -> String? {
        switch object[name] {
        case nil, .null?: return nil
        case .string(let text)?: return text
        default: throw failure(name, "\"\(name)\" must be a string or null")
        }
    }

    /// A required integer: a JSON integer or a decimal string, in `Int64`.
    func int64(_ name: String) throws(CoreError) -> Int64 {
        guard let number = try value(name).int64Value else {
            throw failure(name, "\"\(name)\" must be an integer (a number or a decimal string) within 64 bits")
        }
        return number
    }

    /// An optional integer: absent or null gives `nil`.
    func optionalInt64(_ name: String) throws(CoreError) -> Int64? {
        switch object[name] {
        case nil, .null?: return nil
        default: return try int64(name)
        }
    }

    /// A required non-negative integer.
    func nonNegativeInt64(_ name: String) throws(CoreError) -> Int64 {
        let number = try int64(name)
        guard number >= 0 else { throw failure(name, "\"\(name)\" must not be negative") }
        return number
    }

    func bool(_ name: String) throws(CoreError) -> Bool {
        guard case .bool(let flag) = try value(name) else { throw failure(name, "\"\(name)\" must be true or false") }
        return flag
    }

    func object(_ name: String) throws(CoreError) -> JSONObject {
        guard case .object(let members) = try value(name) else {
            throw failure(name, "\"\(name)\" must be a JSON object")
        }
        return members
    }

    /// An optional object: absent or null gives `nil`.
    func optionalObject(_ name: String) throws(CoreError) -> JSONObject? {
        switch object[name] {
        case nil, .null?: return nil
        case .object(let members)?: return members
        default: throw failure(name, "\"\(name)\" must be a JSON object or null")
        }
    }

    /// A required string that names one case of `T`.
    func enumeration<T: RawRepresentable>(_ name: String, _ type: T.Type) throws(CoreError) -> T
    where T.RawValue == String, T: CaseIterable {
        let text = try string(name)
        guard let parsed = T(rawValue: text) else {
            let allowed = T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            throw failure(name, "\"\(name)\" must be one of \(allowed), not \"\(text)\"")
        }
        return parsed
    }
}
