/// A binary min-heap of timer deadlines, ordered by deadline then by id (FIFO among equal deadlines).
///
/// Cancelled timers stay in the heap and are skipped when they come up: the owner keeps the live set.
struct TimerHeap {
    struct Entry {
        let deadline: UInt64
        let id: UInt64
    }

    private var storage: [Entry] = []

    var isEmpty: Bool { storage.isEmpty }
    var count: Int { storage.count }
    var first: Entry? { storage.first }

    mutating func insert(_ entry: Entry) {
        storage.append(entry)
        var child = storage.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.less(storage[child], storage[parent]) else { break }
            storage.swapAt(child, parent)
            child = parent
        }
    }

    mutating func popFirst() -> Entry? {
        guard !storage.isEmpty else { return nil }
        storage.swapAt(0, storage.count - 1)
        let top = storage.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < storage.count && Self.less(storage[left], storage[smallest]) { smallest = left }
            if right < storage.count && Self.less(storage[right], storage[smallest]) { smallest = right }
            if smallest == parent { break }
            storage.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }

    private static func less(_ a: Entry, _ b: Entry) -> Bool {
        a.deadline != b.deadline ? a.deadline < b.deadline : a.id < b.id
    }
}
