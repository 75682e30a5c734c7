import Glibc
import Testing
import VXPlatform

/// The control thread's nap (`ControlNap`): a worker that leaves work wakes it once per nap, and
/// never when it is awake or chose not to nap because work was queued.
@Suite("The control thread's nap")
struct ControlNapTests {
    @Test func aWorkerWakesANappingControlThreadOncePerNap() throws {
        let wake = try WakeEvent()
        defer { wake.fd.close() }
        let nap = ControlNap(wake: wake)
        func signalled() -> Bool {
            var p = pollfd(fd: wake.fd.rawValue, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, 0) == 1
            if ready { wake.clear() }
            return ready
        }
        nap.poke()
        #expect(!signalled(), "awake: nothing to wake")
        #expect(nap.settle { true })
        nap.poke()
        #expect(signalled(), "napping: woken")
        nap.poke()
        #expect(!signalled(), "once per nap")
        nap.awake()
        #expect(!nap.settle { false }, "work queued: no nap")
        nap.poke()
        #expect(!signalled(), "not napping after all: nothing to wake")
    }
}
