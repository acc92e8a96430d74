import Synchronization

/// Counters of one HTTP/2 server, shared by its loops (relaxed atomics), read from any thread for /metrics.
public final class HTTP2ServerCounters: Sendable {
    /// A point-in-time copy of the counters.
    public struct Snapshot: Sendable {
        public var connectionsAccepted = 0
        public var connectionsOpen = 0
        /// Refused at accept because `maxConnections` was reached.
        public var connectionsRejected = 0
        public var tlsFailures = 0
        public var protocolErrors = 0
        /// Closed with GOAWAY(ENHANCE_YOUR_CALM) for abuse.
        public var abusiveConnections = 0
        public var timeouts = 0
        public var requests = 0
        /// Async handlers running now.
        public var handlersRunning = 0
        /// Responses by status class: index 1...5 for 1xx...5xx (index 0 unused).
        public var responsesByClass = [Int](repeating: 0, count: 6)
    }

    let connectionsAccepted = Atomic<Int>(0)
    let connectionsOpen = Atomic<Int>(0)
    let connectionsRejected = Atomic<Int>(0)
    let tlsFailures = Atomic<Int>(0)
    let protocolErrors = Atomic<Int>(0)
    let abusiveConnections = Atomic<Int>(0)
    let timeouts = Atomic<Int>(0)
    let requests = Atomic<Int>(0)
    let handlersRunning = Atomic<Int>(0)
    private let responses1xx = Atomic<Int>(0)
    private let responses2xx = Atomic<Int>(0)
    private let responses3xx = Atomic<Int>(0)
    private let responses4xx = Atomic<Int>(0)
    private let responses5xx = Atomic<Int>(0)

    public init() {}

    func countResponse(status: Int) {
        switch status / 100 {
        case 1: responses1xx.add(1)
        case 2: responses2xx.add(1)
        case 3: responses3xx.add(1)
        case 4: responses4xx.add(1)
        default: responses5xx.add(1)
        }
    }

    public func snapshot() -> Snapshot {
        var snapshot = Snapshot()
        snapshot.connectionsAccepted = connectionsAccepted.load(ordering: .relaxed)
        snapshot.connectionsOpen = connectionsOpen.load(ordering: .relaxed)
        snapshot.connectionsRejected = connectionsRejected.load(ordering: .relaxed)
        snapshot.tlsFailures = tlsFailures.load(ordering: .relaxed)
        snapshot.protocolErrors = protocolErrors.load(ordering: .relaxed)
        snapshot.abusiveConnections = abusiveConnections.load(ordering: .relaxed)
        snapshot.timeouts = timeouts.load(ordering: .relaxed)
        snapshot.requests = requests.load(ordering: .relaxed)
        snapshot.handlersRunning = handlersRunning.load(ordering: .relaxed)
        snapshot.responsesByClass = [0, responses1xx.load(ordering: .relaxed), responses2xx.load(ordering: .relaxed),
                                     responses3xx.load(ordering: .relaxed), responses4xx.load(ordering: .relaxed),
                                     responses5xx.load(ordering: .relaxed)]
        return snapshot
    }
}

extension Atomic where Value == Int {
    /// Relaxed increment: counters only, no ordering needed.
    @inline(__always)
    func add(_ amount: Int) { _ = wrappingAdd(amount, ordering: .relaxed) }
}
