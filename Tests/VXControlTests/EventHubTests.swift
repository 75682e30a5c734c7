// The event stream's fan-out: a subscriber that does not read loses events (counted, and told),
// and publishing never waits for it.
import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import VXConfig
@testable import VXRouter
@testable import VXControl

@Suite struct EventHubTests {
    /// Everything written to the channel so far, as text.
    func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) {
            if case .body(.byteBuffer(let buffer)) = part { text += String(buffer: buffer) }
        }
        return text
    }

    @Test func eventsReachSubscribersInOrder() throws {
        let channel = EmbeddedChannel()
        let hub = EventHub()
        let subscriber = StreamWriter.events(channel: channel)
        hub.subscribe(subscriber)
        hub.publish(.learn, json: "{\"n\":1}")
        hub.publish(.move, json: "{\"n\":2}")
        channel.embeddedEventLoop.run()
        let text = try written(channel)
        #expect(text == "id: 1\nevent: learn\ndata: {\"n\":1}\n\nid: 2\nevent: move\ndata: {\"n\":2}\n\n")
        #expect(hub.dropped.load(ordering: .relaxed) == 0)
        hub.unsubscribe(subscriber)
        hub.publish(.ageOut, json: "{}")
        channel.embeddedEventLoop.run()
        #expect(try written(channel) == "")
        #expect(hub.published.load(ordering: .relaxed) == 3)
    }

    @Test func aSlowSubscriberLosesEventsAndIsToldHowMany() throws {
        let channel = EmbeddedChannel()
        let hub = EventHub()
        let subscriber = StreamWriter.events(channel: channel)
        hub.subscribe(subscriber)
        // The event loop does not run: nothing drains, the buffer fills, publishing goes on.
        for i in 0..<(StreamWriter.eventBufferCapacity + 10) { hub.publish(.learn, json: "{\"n\":\(i)}") }
        #expect(hub.dropped.load(ordering: .relaxed) == 10)
        channel.embeddedEventLoop.run()
        let text = try written(channel)
        #expect(text.hasPrefix("event: lost\ndata: {\"count\":10}\n\n"), "\(text.prefix(80))")
        #expect(text.components(separatedBy: "event: learn").count - 1 == StreamWriter.eventBufferCapacity)
        // Drained: there is room again.
        hub.publish(.fdbFull, json: "{}")
        channel.embeddedEventLoop.run()
        #expect(try written(channel).contains("event: fdb_full"))
        #expect(hub.dropped.load(ordering: .relaxed) == 10)
    }
}
