import StarlingCore
import StarlingHTTP2

/// The reconciliation routes (the work is ``Reconciler``'s):
/// * `POST /v1/reconcile` (admin) → 200 at once `{"id":N,"status":"running","started":true|false}` (false: a run was
///   already active and this is its id);
/// * `GET /v1/reconcile/{id}` (admin; `latest` for the newest) → the run with per-region/table results;
/// * `GET /v1/reconcile/task` (region) → `{"task":{…}|null}`, the region's current step;
/// * `POST /v1/reconcile/answer` (region) with a ``ReconcileAnswer`` → `{"task":{…}|null}`, the next step.
/// Literal routes take precedence over `{id}` (``Router/match(method:path:)``), so `task` and `answer` are never
/// read as ids: `GET /v1/reconcile/answer` is 405.
extension HubAPI {
    /// `POST /v1/reconcile`: starts a run, or names the one already running.
    func startReconcile() async throws -> HTTPResponse {
        let started = try await reconciler.start(trigger: "api")
        let body: JSONValue = ["id": .integer(started.id), "status": "running", "started": .bool(started.isNew)]
        return .json(200, body.serialized())
    }

    /// `GET /v1/reconcile/{id}`: a run's report (`latest`: the newest run).
    func reconcileReport(_ request: HubRequest) async throws -> HTTPResponse {
        let text = request.pathParameters["id"] ?? ""
        let id = text == "latest" ? nil : Int64(text)
        guard text == "latest" || (id ?? 0) > 0 else {
            throw HTTPError(404, code: "not_found", "no such reconciliation")
        }
        guard let report = try await reconciler.report(id: id) else {
            throw HTTPError(404, code: "not_found", "no such reconciliation")
        }
        return .json(200, report.serialized())
    }

    /// `GET /v1/reconcile/task`: the calling region's current step, from memory.
    func reconcileTask(_ request: HubRequest) -> HTTPResponse {
        let task = reconciler.task(region: request.region)
        let body: JSONValue = ["task": task?.json ?? .null]
        return .json(200, body.serialized())
    }

    /// `POST /v1/reconcile/answer`: the region's bucket hashes for its step; answers with the next step.
    func reconcileAnswer(_ request: HubRequest) async throws -> HTTPResponse {
        let answer: ReconcileAnswer
        do {
            let value = try JSONParser(limits: .init(maxDepth: 16, maxBytes: settings.limits.maxBodyBytes))
                .parse(request.body)
            answer = try ReconcileAnswer(json: value)
        } catch {
            throw HTTPError(400, code: "invalid_request", "the body is not a reconcile answer: \(error)")
        }
        let next = try await reconciler.answer(region: request.region, answer)
        let body: JSONValue = ["task": next?.json ?? .null]
        return .json(200, body.serialized())
    }
}
