import Foundation

/// The fuzz targets' entry point without libFuzzer (a plain build, no `-D FUZZING`): replays the files named on
/// the command line, or every file of the directories named (in name order), so a crash input can be re-run
/// under the debugger or a plain build. One copy for the three targets; each target's `@main` calls it with its
/// own `run`. (The libFuzzer entry points stay in each target: libFuzzer may call a target's
/// `LLVMFuzzerTestOneInput` without running its `main`, so the callback cannot be set up at run time.)
public enum FuzzReplay {
    /// Runs `body` on the contents of every input file named by `arguments`.
    public static func main(
        arguments: [String] = Array(CommandLine.arguments.dropFirst()), _ body: ([UInt8]) -> Void
    ) throws {
        for path in arguments {
            for file in try files(at: path) {
                body(Array(try Data(contentsOf: URL(fileURLWithPath: file))))
            }
        }
    }

    /// The input files under `path`: the path itself when it is a file.
    static func files(at path: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            return [path]
        }
        return try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { path + "/" + $0 }
    }
}
