/// Region name → priority (`hub.yaml` `regions[].priority`), higher wins. Unknown names, including
/// ``LogEntry/hubOrigin``, have priority 0.
public struct RegionPriorities: Sendable, Hashable, ExpressibleByDictionaryLiteral {
    public var priorities: [String: Int]

    public init(_ priorities: [String: Int] = [:]) {
        self.priorities = priorities
    }

    public init(dictionaryLiteral elements: (String, Int)...) {
        self.init(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }

    public subscript(region: String) -> Int {
        priorities[region] ?? 0
    }
}
