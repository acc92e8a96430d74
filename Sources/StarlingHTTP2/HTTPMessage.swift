/// Header fields of a request or response, in order. HTTP/2 field names are lower case.
public struct HTTPHeaders: Sendable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var fields: [(name: String, value: String)]

    public init(_ fields: [(name: String, value: String)] = []) { self.fields = fields }
    public init(dictionaryLiteral elements: (String, String)...) {
        fields = elements.map { (name: $0.0, value: $0.1) }
    }

    /// The first value of `name` (case-insensitive).
    public subscript(name: String) -> String? {
        for field in fields where field.name == name { return field.value }
        guard !Self.isLowercase(name) else { return nil }  // callers usually ask in lower case already
        let lower = name.lowercased()
        for field in fields where field.name == lower { return field.value }
        return nil
    }

    /// Appends a field whose name is known to be lower case already (HTTP/2 requires it on the wire).
    mutating func append(lowercasedName name: String, value: String) {
        fields.append((name: name, value: value))
    }

    private static func isLowercase(_ name: String) -> Bool {
        !name.utf8.contains { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }
    }

    public mutating func add(_ name: String, _ value: String) {
        fields.append((name: name.lowercased(), value: value))
    }

    /// Replaces every field named `name` with one field.
    public mutating func set(_ name: String, _ value: String) {
        let lower = name.lowercased()
        fields.removeAll { $0.name == lower }
        fields.append((name: lower, value: value))
    }

    public mutating func remove(_ name: String) {
        let lower = name.lowercased()
        fields.removeAll { $0.name == lower }
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }
}

/// A complete request as a handler sees it: body gathered and decoded (gzip removed).
public struct HTTPRequest: Sendable {
    public var method: String
    /// The path without the query string, percent-decoding not applied.
    public var path: String
    /// The query string after `?`, raw.
    public var rawQuery: String
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Values of `{name}` segments of the matched route pattern.
    public var pathParameters: [String: String] = [:]
    /// The peer's address, for logs.
    public var remoteAddress: String

    public init(method: String, path: String, rawQuery: String = "", headers: HTTPHeaders = HTTPHeaders(),
                body: [UInt8] = [], remoteAddress: String = "") {
        self.method = method
        self.path = path
        self.rawQuery = rawQuery
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
    }

    /// Query parameters, percent-decoded (`+` as space); the first of repeated names wins.
    public var query: [String: String] {
        var result: [String: String] = [:]
        for pair in rawQuery.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = PercentDecoding.decode(parts[0], plusAsSpace: true)
            let value = parts.count > 1 ? PercentDecoding.decode(parts[1], plusAsSpace: true) : ""
            if let name, let value, result[name] == nil { result[name] = value }
        }
        return result
    }

    /// The bearer token of the `authorization` header, if any.
    public var bearerToken: String? {
        guard let value = headers["authorization"] else { return nil }
        let prefix = "bearer "
        guard value.count > prefix.count, value.lowercased().hasPrefix(prefix) else { return nil }
        return String(value.dropFirst(prefix.count)).trimmingSpaces()
    }
}

/// A complete response from a handler.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON body with `content-type: application/json`.
    public static func json(_ status: Int = 200, _ body: [UInt8]) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["content-type": "application/json"], body: body)
    }

    /// A plain-text body.
    public static func text(_ status: Int = 200, _ text: String, contentType: String = "text/plain; charset=utf-8")
        -> HTTPResponse {
        HTTPResponse(status: status, headers: ["content-type": contentType], body: Array(text.utf8))
    }

    /// The error shape of the API: `{"error":{"code":"…","message":"…"}}`.
    public static func error(_ status: Int, code: String, message: String) -> HTTPResponse {
        let body = "{\"error\":{\"code\":\(JSONText.quote(code)),\"message\":\(JSONText.quote(message))}}"
        return .json(status, Array(body.utf8))
    }
}

/// The minimal JSON string quoting the transport needs for error bodies (the model layer has the full codec).
enum JSONText {
    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

enum PercentDecoding {
    /// Decodes `%XX` escapes; nil when an escape is malformed or the result is not UTF-8.
    static func decode(_ text: Substring, plusAsSpace: Bool) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            } else if byte == UInt8(ascii: "+") && plusAsSpace {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        var slice = Substring(self)
        while slice.first == " " { slice.removeFirst() }
        while slice.last == " " { slice.removeLast() }
        return String(slice)
    }
}
