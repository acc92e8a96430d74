import StarlingCore

extension HubConfiguration {
    /// The largest `regions[].id`: `starling.next_id()` keeps 10 bits for the region.
    public static let maxRegionID = 1023

    /// Checks one `regions[].id`: within 0…``maxRegionID`` and not used by another region (two regions with
    /// one id could hand out the same ids).
    static func validateRegionID(_ id: Int?, key: String, seen: inout Set<Int>) throws(HubError) -> Int? {
        guard let id else { return nil }
        guard (0...maxRegionID).contains(id) else {
            throw HubError(code: .invalidConfiguration, message: "must be between 0 and \(maxRegionID)", key: key)
        }
        guard seen.insert(id).inserted else {
            throw HubError(code: .invalidConfiguration, message: "duplicate region id \(id)", key: key)
        }
        return id
    }
}
