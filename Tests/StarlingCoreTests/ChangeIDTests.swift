import StarlingCore
import Testing

@Suite("Change ids")
struct ChangeIDTests {
    @Test("the text form round-trips, split at the last colon")
    func roundTrip() {
        for id in [ChangeID(origin: "eu", number: 0), ChangeID(origin: "us-east", number: 4_611_686_018_427_387_904 + 77),
                   ChangeID(origin: "a:b", number: 12), ChangeID(origin: "r1", number: -3)] {
            #expect(ChangeID(id.description) == id, "\(id)")
        }
        #expect(ChangeID("eu:42")?.origin == "eu" && ChangeID("eu:42")?.number == 42)
    }

    @Test("other forms are no change id", arguments: ["", "eu", "eu:", ":42", "eu:4x", "eu:42 ", "repair:1:r1x", "eu:99999999999999999999", "r1:\u{301}5"])
    func refusals(_ text: String) {
        #expect(ChangeID(text) == nil)
    }
}
