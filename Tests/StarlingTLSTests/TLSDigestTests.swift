import StarlingTLS
import Testing

@Suite struct TLSDigestTests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        ),
    ])
    func sha256MatchesKnownVectors(input: String, expected: String) {
        // Proves sha256Hex matches the FIPS 180-2 test vectors, including the empty input.
        #expect(TLSDigest.sha256Hex(input) == expected)
    }

    @Test func sha256OfAMillionAAndOfNonContiguousCollections() {
        // Proves long inputs and collections without contiguous storage hash correctly.
        let million = [UInt8](repeating: 0x61, count: 1_000_000)
        #expect(
            TLSDigest.hex(TLSDigest.sha256(million))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        let lazy = (0..<3).lazy.map { UInt8(0x61 + $0) }
        #expect(TLSDigest.sha256(lazy) == TLSDigest.sha256(Array("abc".utf8)))
        #expect(TLSDigest.sha256(Array("abc".utf8)[1...]) == TLSDigest.sha256(Array("bc".utf8)))
        #expect(TLSDigest.sha256([UInt8]()).count == 32)
    }

    @Test(arguments: [
        ([UInt8](), [UInt8](), true),
        ([1, 2, 3], [1, 2, 3], true),
        ([1, 2, 3], [1, 2, 4], false),
        ([0, 2, 3], [1, 2, 3], false),
        ([1, 2, 3], [1, 2], false),
        ([], [0], false),
    ] as [([UInt8], [UInt8], Bool)])
    func constantTimeEqualsComparesContentAndLength(a: [UInt8], b: [UInt8], equal: Bool) {
        // Proves constantTimeEquals is true exactly for equal length and content.
        #expect(TLSDigest.constantTimeEquals(a, b) == equal)
        #expect(TLSDigest.constantTimeEquals(b, a) == equal)
    }

    @Test func randomBytesHaveTheRequestedLengthAndDiffer() throws {
        // Proves RAND_bytes fills the requested count and two draws of 32 bytes differ.
        let first = try TLSRandom.bytes(count: 32)
        let second = try TLSRandom.bytes(count: 32)
        #expect(first.count == 32 && second.count == 32)
        #expect(first != second)
        #expect(try TLSRandom.bytes(count: 0).isEmpty)
    }
}
