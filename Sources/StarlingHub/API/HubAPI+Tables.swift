import StarlingCore
import StarlingHTTP2

/// The synced tables, for regions: `GET /v1/config` (the region's name and id, every synced table's policy and
/// registered shape) and `POST /v1/tables/register` (a region's table shapes, stored or compared;
/// ``HubRegistry`` holds the parsing and SQL).
extension HubAPI {
    /// `GET /v1/config`: the calling region's name and id, and every synced table's policy and shape.
    func config(_ request: HubRequest) throws -> HTTPResponse {
        let region = request.region
        let shapes = self.shapes.current
        let tables = settings.tables.map { table in
            var provisional: String?
            if case .manual(let outcome) = table.policy { provisional = outcome == .lww ? "lww" : "keep" }
            return HubConfig.Table(
                name: table.name, policy: table.policy.name, manualProvisional: provisional,
                shape: shapes[table.name]?.shape)
        }
        var config = HubConfig(
            region: region, tables: tables, regionID: settings.regions.first(where: { $0.name == region })?.id)
        config.pushLimits = HubConfig.PushLimits(
            maxChanges: settings.limits.maxPushChanges, maxBodyBytes: settings.limits.maxBodyBytes)
        config.logTerms = sequencer.terms.withLock { $0 }
        return .json(200, config.json.serialized())
    }

    /// `POST /v1/tables/register`: 200 when every table matches (or was registered now), 409
    /// `schema_mismatch` naming the table and column otherwise (``HubRegistry``).
    func register(_ request: HubRequest) async throws -> HTTPResponse {
        let region = request.region
        let tables = try HubRegistry.parseRegistrations(request.body, settings: settings)
        let (mismatch, entries) = try await pool.withConnection { connection in
            let mismatch = try HubRegistry.register(tables, region: region, connection: connection)
            return (mismatch, try HubStore.loadShapeEntries(connection))
        }
        self.shapes.replace(with: entries)
        if let mismatch {
            logger.error("schema mismatch", metadata: ["region": "\(region)", "error": "\(mismatch)"])
            throw HTTPError(409, code: "schema_mismatch", mismatch)
        }
        return .json(200, Array(#"{"status":"ok"}"#.utf8))
    }
}
