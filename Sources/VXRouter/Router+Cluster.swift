// The service for an in-process steerer (the cluster client), whether or not the control
// endpoint runs: the same calls, queued to the control thread the same way.
extension Router {
    public func makeService() -> any RouterService {
        RouterControl(queue: controlQueue, hub: eventHub, served: served, local: config.underlay.local)
    }
}
