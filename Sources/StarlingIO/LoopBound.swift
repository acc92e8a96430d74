/// A non-Sendable value that may only be touched on one event loop, but whose box may travel across threads
/// (for example inside a handler task that comes back with `loop.execute`). Access asserts the loop.
public struct LoopBound<Value>: @unchecked Sendable {  // Confined: `value` is only read on `loop`.
    public let loop: EventLoop
    private let stored: Value

    /// Must be created on `loop`.
    public init(_ value: Value, loop: EventLoop) {
        loop.assertInEventLoop()
        self.loop = loop
        self.stored = value
    }

    /// The value; only on `loop`.
    public var value: Value {
        loop.assertInEventLoop()
        return stored
    }

    /// Runs `body` with the value on the loop, from any thread.
    public func execute(_ body: @escaping @Sendable (Value) -> Void) {
        let box = self
        loop.execute { body(box.value) }
    }
}
