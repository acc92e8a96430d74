/// The version of this Starling build, reported by `starling version` and `/healthz`.
public enum StarlingVersion {
    public static let current = "0.1.0"
}
