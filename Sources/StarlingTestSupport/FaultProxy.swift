public import StarlingProxy

/// The tests' fault proxy lives in StarlingProxy, beside `starling-netdelay` that uses the same core; the tests
/// keep naming it through this module.
public typealias FaultProxy = StarlingProxy.FaultProxy
