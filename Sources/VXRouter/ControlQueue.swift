// How the router's service (`RouterControl`) reaches the control thread, the only writer of the
// FDBs, flood lists and remote table: a call queues its work and pokes an eventfd the control
// loop polls beside its signalfd, so queued work runs within a millisecond; the caller resumes
// with the work's answer. The work sees the `Router`; nothing outside this target does. Not the
// per-packet path: a mutex-protected array is plenty.
import Synchronization
import VXPlatform

final class ControlQueue: Sendable {
    typealias Work = @Sendable (Router) -> Void

    private let pending = Mutex<(items: [Work], closed: Bool)>(([], false))
    let wake: WakeEvent

    init() throws(SystemError) { wake = try WakeEvent() }

    /// Queues `work` for the control thread; false (nothing queued) once the router is stopping.
    @discardableResult
    func submit(_ work: @escaping Work) -> Bool {
        let accepted = pending.withLock { state -> Bool in
            if state.closed { return false }
            state.items.append(work)
            return true
        }
        if accepted { wake.signal() }
        return accepted
    }

    /// Control thread: everything queued so far.
    func take() -> [Work] {
        wake.clear()
        return pending.withLock { state in
            let items = state.items
            state.items.removeAll()
            return items
        }
    }

    /// Control thread, when stopping: refuse further work and return what is left.
    func close() -> [Work] {
        pending.withLock { state in
            state.closed = true
            let items = state.items
            state.items.removeAll()
            return items
        }
    }
}
