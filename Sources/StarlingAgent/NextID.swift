import StarlingPostgres

/// `starling.next_id()` (migration 0005): the agent keeps the region's id, from the hub's `/v1/config`, in
/// `starling.state.region_id`, where the function reads it. Written at every start, so a region given an id
/// later (or a new one) gets it at its agent's next start; a region without one keeps NULL and the function
/// raises an error naming the fix instead of handing out ids that could collide.
enum NextID {
    static func store(regionID: Int?, connection: PostgresConnection) throws {
        try connection.execute(
            "UPDATE starling.state SET region_id = $1::int",
            [regionID.map { .text(String($0)) } ?? .null], name: "agent.storeRegionID")
    }
}
