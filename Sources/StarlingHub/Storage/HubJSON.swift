import StarlingCore

/// Canonical JSON text helpers: the hub stores keys and images as StarlingCore's canonical serialization, so
/// equal objects give equal text (the head's identity) and stored text can be copied into responses as is.
enum HubJSON {
    static func text(_ object: JSONObject) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(128)
        JSONSerializer.writeObject(object, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    static func text(_ value: JSONValue) -> String {
        String(decoding: value.serialized(), as: UTF8.self)
    }

    /// Parses stored text that must hold an object; nil stays nil.
    static func optionalObject(_ text: String?) throws(HubError) -> JSONObject? {
        guard let text else { return nil }
        do {
            guard let object = try JSONValue(parsing: text).objectValue else {
                throw HubError(code: .storageFailed, message: "stored JSON is not an object")
            }
            return object
        } catch let error as CoreError {
            throw HubError(code: .storageFailed, message: "stored JSON does not parse: \(error)")
        } catch {
            throw HubError(code: .storageFailed, message: "\(error)")
        }
    }

    /// `{"error":…}`-free helper: appends `"name":` to `output`.
    static func appendName(_ name: String, to output: inout [UInt8]) {
        JSONSerializer.writeString(name, to: &output)
        output.append(UInt8(ascii: ":"))
    }

    /// Microseconds since the epoch as ISO 8601 UTC with microseconds: `2025-01-02T03:04:05.123456Z`.
    static func iso8601(micros: Int64) -> String {
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let fraction = micros - seconds * 1_000_000
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secondOfDay = seconds - days * 86400
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):"
            + "\(pad(secondOfDay % 3600 / 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(fraction, 6))Z"
    }
}
