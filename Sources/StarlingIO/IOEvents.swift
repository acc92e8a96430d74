import CShims

/// Readiness events of a descriptor, as epoll reports them and as interest when registering.
public struct IOEvents: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let readable = IOEvents(rawValue: EPOLLIN.rawValue)
    public static let writable = IOEvents(rawValue: EPOLLOUT.rawValue)
    /// The peer closed or the descriptor failed; always reported, never needs to be asked for.
    public static let hangup = IOEvents(rawValue: EPOLLHUP.rawValue)
    public static let error = IOEvents(rawValue: EPOLLERR.rawValue)
    public static let readHangup = IOEvents(rawValue: EPOLLRDHUP.rawValue)
}

/// Something registered with an event loop: told about readiness of its descriptor, on the loop thread.
public protocol EventLoopHandler: AnyObject {
    /// Called on the loop thread with the events epoll reported for the handler's descriptor.
    func handleEvents(_ events: IOEvents)
}

/// A descriptor's registration with one event loop. Only valid on that loop.
public struct Registration: Hashable, Sendable {
    public let id: UInt64
    public let fd: Int32
}

/// A scheduled timer's id, for cancelling it.
public struct TimerID: Hashable, Sendable {
    let rawValue: UInt64
}
