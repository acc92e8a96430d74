/// How a row image written under an earlier shape of a table reads under the shape in force, after schema changes
/// (README "Schema changes"): a member under a renamed column's old name takes the new name, one of a dropped column
/// goes, a column added since gets its default's image when the image lacks it (what `ALTER TABLE … ADD COLUMN`
/// gave every row that existed then), and a column widened to a type whose image is text (`integer` → `bigint`)
/// has a JSON number written as its text. The hub reads every pushed image this way before it decides on it, and
/// rewrites the heads of a table when a schema change is sequenced, so its heads always have the shape in force;
/// regions apply the same rules (a missing column takes its default). Pure: no IO.
public struct ImageRules: Sendable, Hashable {
    /// Retired column name → new name (renamed), nil (dropped).
    public var retired: [String: String?]
    /// Added column → the image of its default (`null` without one).
    public var fill: JSONObject
    /// Columns whose image became text with a widening.
    public var toText: Set<String>

    public init(retired: [String: String?] = [:], fill: JSONObject = [:], toText: Set<String> = []) {
        self.retired = retired
        self.fill = fill
        self.toText = toText
    }

    public var isEmpty: Bool { retired.isEmpty && fill.isEmpty && toText.isEmpty }

    /// The rules of `change` alone: `fill` holds the images of its added columns' defaults, `toText` its widened
    /// columns whose image became text.
    public static func of(_ change: SchemaChange, fill: JSONObject, toText: Set<String>) -> ImageRules {
        var rules = ImageRules(fill: fill, toText: toText)
        for action in change.actions {
            switch action {
            case .dropColumn(let name): rules.retired[name] = .some(nil)
            case .renameColumn(let from, let to): rules.retired[from] = .some(to)
            case .addColumn, .alterType, .index: continue
            }
        }
        return rules
    }

    /// These rules followed by `next` (a later change's): what reads an image written before both.
    public func then(_ next: ImageRules) -> ImageRules {
        var combined = ImageRules(retired: next.retired, fill: [:], toText: [])
        for (name, target) in retired {
            // A name renamed on by `next` follows it; one `next` drops goes.
            if let target, let onward = next.retired[target] { combined.retired[name] = onward } else if combined.retired[name] == nil {
                combined.retired[name] = target
            }
        }
        for (name, value) in fill {
            if let onward = next.retired[name] {
                if let onward { combined.fill[onward] = value }
            } else {
                combined.fill[name] = value
            }
        }
        for (name, value) in next.fill { combined.fill[name] = value }
        for name in toText.union(next.toText) {
            if let onward = next.retired[name] {
                if let onward { combined.toText.insert(onward) }
            } else {
                combined.toText.insert(name)
            }
        }
        // A column added again under a retired name is a new column: the name is not retired any more.
        for name in next.fill.keys { combined.retired[name] = nil }
        return combined
    }

    /// `image` under the shape in force (`columns`: its column names).
    public func apply(to image: JSONObject, columns: Set<String>) -> JSONObject {
        guard !isEmpty, needsWork(image, columns: columns) else { return image }
        var result: JSONObject = [:]
        result.reserveCapacity(image.count + fill.count)
        for (name, value) in image {
            var target: String? = name
            var steps = 0
            while let now = target, !columns.contains(now), let next = retired[now], steps <= retired.count {
                target = next
                steps += 1
            }
            guard let target else { continue }
            if target == name || result[target] == nil { result[target] = value }
        }
        for (name, value) in fill where result[name] == nil && columns.contains(name) { result[name] = value }
        for name in toText {
            if case .number(let text)? = result[name] { result[name] = .string(text) }
        }
        return result
    }

    /// Whether `image` reads differently under the rules (most images, written under the shape in force, do not:
    /// checked without building a new one).
    private func needsWork(_ image: JSONObject, columns: Set<String>) -> Bool {
        if !retired.isEmpty, image.keys.contains(where: { retired[$0] != nil && !columns.contains($0) }) { return true }
        if fill.keys.contains(where: { image[$0] == nil && columns.contains($0) }) { return true }
        return toText.contains { if case .number? = image[$0] { true } else { false } }
    }

    /// `{"retired":{…},"fill":{…},"to_text":[…]}`.
    public var json: JSONValue {
        .object([
            "retired": .object(retired.mapValues { $0.map(JSONValue.string) ?? .null }),
            "fill": .object(fill),
            "to_text": .array(toText.sorted().map(JSONValue.string)),
        ])
    }

    public init(json: JSONValue) throws(CoreError) {
        guard case .object(let object) = json else {
            throw CoreError(code: .invalidValue, message: "image rules must be an object", field: "rules")
        }
        var retired: [String: String?] = [:]
        for (name, value) in object["retired"]?.objectValue ?? [:] {
            switch value {
            case .null: retired[name] = .some(nil)
            case .string(let target): retired[name] = .some(target)
            default: throw CoreError(code: .invalidValue, message: "a retired column maps to a name or null", field: "retired.\(name)")
            }
        }
        self.init(
            retired: retired, fill: object["fill"]?.objectValue ?? [:],
            toText: Set((object["to_text"]?.arrayValue ?? []).compactMap(\.stringValue)))
    }
}
