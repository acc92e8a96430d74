import StarlingCore
import StarlingHTTP2

/// The reconciliation routes (the work is ``Reconciler``'s):
/// * `POST /v1/reconcile` (admin) → 200 at once `{"id":N,"status":"running","started":true|false}` (false: a run was
///   already active and this is its id);
/// * `GET /v1/reconcile/{id}` (admin; `latest` for the newest) → the run with per-region/table results;
/// * `GET /v1/reconcile/task` (region) → `{"task":{…}|null}`, the region's current step;
/// * `POST /v1/reconcile/answer` (region) with a ``ReconcileAnswer`` → `{"task":{…}|null}`, the next step.
/// Literal routes take precedence over `{id}`, so `task` is never read as an id.
extension HubAPI {
    func addReconcileRoutes(to router: inout Router, reconciler: Reconciler) {
        router.add("POST", "/v1/reconcile", .async { [self] request in
            try auth.admin(request)
            let started: (id: Int64, isNew: Bool)
            do {
                started = try await reconciler.start(trigger: "api")
            } catch {
                throw Self.httpError(error)
            }
            let body: JSONValue = ["id": .integer(started.id), "status": "running", "started": .bool(started.isNew)]
            return .json(200, body.serialized())
        })
        router.add("GET", "/v1/reconcile/{id}", .async { [self] request in
            let text = request.pathParameters["id"] ?? ""
            if text == "answer" {
                // `POST /v1/reconcile/answer` is the only route of that path: GET lands here through `{id}`.
                throw HTTPError(
                    405, code: "method_not_allowed", "GET is not allowed on \(request.path)", headers: ["allow": "POST"])
            }
            try auth.admin(request)
            let id = text == "latest" ? nil : Int64(text)
            guard text == "latest" || (id ?? 0) > 0 else { throw HTTPError(404, code: "not_found", "no such reconciliation") }
            let report: JSONValue?
            do {
                report = try await reconciler.report(id: id)
            } catch {
                throw Self.httpError(error)
            }
            guard let report else { throw HTTPError(404, code: "not_found", "no such reconciliation") }
            return .json(200, report.serialized())
        })
        router.add("GET", "/v1/reconcile/task", .immediate { [self] request in
            let region = try auth.region(request)
            let task = reconciler.task(region: region)
            let body: JSONValue = ["task": task?.json ?? .null]
            return .json(200, body.serialized())
        })
        router.add("POST", "/v1/reconcile/answer", .async { [self] request in
            let region = try auth.region(request)
            let answer: ReconcileAnswer
            do {
                let value = try JSONParser(limits: .init(maxDepth: 16, maxBytes: settings.limits.maxBodyBytes))
                    .parse(request.body)
                answer = try ReconcileAnswer(json: value)
            } catch {
                throw HTTPError(400, code: "invalid_request", "the body is not a reconcile answer: \(error)")
            }
            let next: ReconcileTask?
            do {
                next = try await reconciler.answer(region: region, answer)
            } catch {
                throw Self.httpError(error)
            }
            let body: JSONValue = ["task": next?.json ?? .null]
            return .json(200, body.serialized())
        })
    }
}
