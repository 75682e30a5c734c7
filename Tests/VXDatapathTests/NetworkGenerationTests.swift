// Live reload's datapath side (NetworkGeneration.swift): a worker picks up a new network set
// between batches — a network added in a free slot is served at once, one removed is an unknown
// VNI from then on, one kept keeps its tables and counters — and the exchange hands an old
// generation back only after every worker acknowledged a newer one.
import Testing
import VXTestSupport
import VXWire

@testable import VXDatapath

@Suite struct NetworkGenerationTests {
    static let port: UInt16 = 4789
    let remotes = RemoteTable(capacity: 16)
    let counters = WorkerCounters(networks: 4)
    let ring = SPSCRing<LearnEvent>(capacity: 64)
    let link = FakeLink()
    let peer = Endpoint(address: IPAddress("198.18.0.2")!, port: 54321)

    func network(_ vni: UInt32, slot: Int) -> Network {
        let network = Network(
            index: slot, vni: VNI(unchecked: vni), mtu: 1500, underlayMaxFrame: 9000, learning: true, maxEntries: 16,
            allowFrom: [])
        #expect(network.flood.set([remotes.intern(peer.address)!]))
        return network
    }

    func frame(_ last: UInt8) -> [UInt8] { Bytes.frame(to: Bytes.mac(0xEE), from: Bytes.mac(last)) }

    func receive(vni: UInt32, on worker: Worker<FakeTap, FakeLink>) {
        link.pending.append((Bytes.datagram(vni: vni, frame(1)), peer))
        while worker.serviceUnderlay(now: 1) > 0 {}
    }

    @Test func workerServesTheNewSetFromTheNextBatch() {
        let n42 = network(42, slot: 0)
        let tap42 = FakeTap()
        let forwarder = Forwarder(
            networks: [n42], remotes: remotes, counters: counters, learnRing: ring, port: Self.port,
            sourcePorts: SourcePortRange(49152...65535), slots: 4)
        let worker = Worker(devices: [tap42, nil, nil, nil], link: link, forwarder: forwarder, batchSize: 8, maxFrame: 1518)
        let first = NetworkGeneration<FakeTap>(epoch: 0, networks: [n42], devices: [[tap42, nil, nil, nil]])
        let exchange = NetworkExchange(workers: 1, first: first)
        #expect(exchange.newer(than: worker.epoch) == nil && exchange.settled)

        receive(vni: 43, on: worker)
        #expect(counters.snapshot()[counters.unattributedRow, drop: .unknownVNI] == 1)
        receive(vni: 42, on: worker)
        #expect(tap42.written.count == 1)

        // VNI 43 added in slot 2 (slot 1 is free but not taken: slots need not be dense).
        let n43 = network(43, slot: 2)
        let tap43 = FakeTap()
        let second = NetworkGeneration<FakeTap>(epoch: 1, networks: [n42, n43], devices: [[tap42, nil, tap43, nil]])
        exchange.publish(second)
        #expect(!exchange.settled)
        guard let picked = exchange.newer(than: worker.epoch) else {
            Issue.record("the worker does not see the published generation")
            return
        }
        #expect(picked === second)
        worker.adopt(picked, worker: 0)
        // Not acknowledged yet: the first generation must stay.
        #expect(exchange.collect().isEmpty)
        exchange.acknowledge(worker: 0, epoch: worker.epoch)
        #expect(exchange.settled && exchange.newer(than: worker.epoch) == nil)
        #expect(exchange.collect().map(\.epoch) == [0])

        receive(vni: 43, on: worker)
        #expect(tap43.written.count == 1)
        #expect(counters.snapshot()[2, .tapTxPackets] == 1)
        #expect(counters.snapshot()[counters.unattributedRow, drop: .unknownVNI] == 1)
        tap43.pending = [frame(7)]
        while worker.serviceDevice(2) > 0 {}
        #expect(link.sent.last.map { Array($0.bytes[(8 + 4)..<(8 + 7)]) } == [0, 0, 43], "\(link.sent.last.map(\.bytes) ?? [])")
        // VNI 42 kept: same tables (its learned MAC is still there), its counters went on.
        #expect(n42.fdb.count == 0 || n42.fdb.lookup(Bytes.mac(1)) != nil)
        receive(vni: 42, on: worker)
        #expect(tap42.written.count == 2 && counters.snapshot()[0, .tapTxPackets] == 2)

        // VNI 42 removed: an unknown VNI from now on; its TAP is not written again.
        let third = NetworkGeneration<FakeTap>(epoch: 2, networks: [n43], devices: [[nil, nil, tap43, nil]])
        exchange.publish(third)
        worker.adopt(exchange.newer(than: worker.epoch)!, worker: 0)
        exchange.acknowledge(worker: 0, epoch: worker.epoch)
        receive(vni: 42, on: worker)
        #expect(tap42.written.count == 2)
        #expect(counters.snapshot()[counters.unattributedRow, drop: .unknownVNI] == 2)
        #expect(exchange.collect().map(\.epoch) == [1])
    }

    @Test func oldGenerationsWaitForEveryWorker() {
        let n42 = network(42, slot: 0)
        let exchange = NetworkExchange(
            workers: 2, first: NetworkGeneration<FakeTap>(epoch: 0, networks: [n42], devices: [[nil], [nil]]))
        exchange.publish(NetworkGeneration<FakeTap>(epoch: 1, networks: [], devices: [[nil], [nil]]))
        exchange.publish(NetworkGeneration<FakeTap>(epoch: 2, networks: [n42], devices: [[nil], [nil]]))
        exchange.acknowledge(worker: 0, epoch: 2)
        #expect(exchange.collect().isEmpty && !exchange.settled)
        exchange.acknowledge(worker: 1, epoch: 1)
        #expect(exchange.collect().map(\.epoch) == [0])
        exchange.acknowledge(worker: 1, epoch: 2)
        #expect(exchange.collect().map(\.epoch) == [1] && exchange.settled)
        #expect(exchange.current.epoch == 2)
    }
}
