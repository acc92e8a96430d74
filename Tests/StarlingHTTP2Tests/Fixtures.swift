import StarlingTestSupport

/// Paths of files under Fixtures/ beside this file.
enum Fixtures {
    static var directory: String {
        let file = #filePath
        guard let slash = file.lastIndex(of: "/") else { return "Fixtures" }
        return String(file[..<slash]) + "/Fixtures"
    }

    static var h2Client: String { directory + "/h2_client.py" }

    /// Runs h2_client.py with `arguments` under the suite's Python (Debian's, with httpx/h2).
    static func runH2Client(_ arguments: [String], timeout: Duration = .seconds(60)) async throws -> ProcessRunner.Result {
        try await ProcessRunner.run(ProcessRunner.python, [h2Client] + arguments, timeout: timeout)
    }
}
