/// The OpenAPI 3.1 description of the hub's whole HTTP API, served at `GET /openapi.json` and printed by
/// `starling admin openapi`.
///
/// The document is the file `Sources/StarlingHub/Resources/openapi.json`, embedded in the binary by SwiftPM
/// (`embedInCode`); there is no other copy. `OpenAPIDocumentTests` parses it and fails when a route the hub
/// registers is missing from it (or the other way round): edit the file, keep it valid JSON.
public enum HubOpenAPI {
    /// The document, pretty-printed JSON with a trailing newline.
    public static let document = String(decoding: PackageResources.openapi_json, as: UTF8.self)
}
