// FDB events (learn, move, age-out, FDB full) from the control thread to Server-Sent Events
// subscribers.
//
//  1. the control thread formats an event once and offers it to every subscriber;
//  2. each subscriber holds a bounded buffer: a full buffer drops the event and counts it, so a
//     slow client never blocks the control thread (nor grows its memory);
//  3. the subscriber's event loop drains the buffer into its connection while the connection is
//     writable, and again when it becomes writable; lost events are announced to the client.
//     (The subscribers are the endpoint's connections, `EventSink`s: this side knows no HTTP.)
import Synchronization
import VXControlAPI

/// The events the stream carries (the SSE `event:` field).
typealias EventKind = FDBEvent.Kind

final class EventHub: Sendable {
    private let subscribers = Mutex<[ObjectIdentifier: any EventSink]>([:])
    private let sequence = Atomic<UInt64>(0)
    /// Events not delivered to some subscriber because its buffer was full.
    let dropped = Atomic<UInt64>(0)
    let published = Atomic<UInt64>(0)

    var subscriberCount: Int { subscribers.withLock { $0.count } }

    func subscribe(_ subscriber: any EventSink) {
        subscribers.withLock { $0[ObjectIdentifier(subscriber)] = subscriber }
    }

    func unsubscribe(_ subscriber: any EventSink) {
        _ = subscribers.withLock { $0.removeValue(forKey: ObjectIdentifier(subscriber)) }
    }

    /// Control thread: formats `event` as one SSE message and offers it to every subscriber.
    func publish(_ kind: EventKind, json: String) { publish(event: kind.rawValue, json: json) }

    /// Any thread: `json` under the SSE event name `event` (cluster events have names of their own).
    func publish(event name: String, json: String) {
        let id = sequence.add(1, ordering: .relaxed).newValue
        published.add(1, ordering: .relaxed)
        let current = subscribers.withLock { Array($0.values) }
        guard !current.isEmpty else { return }
        let message = "id: \(id)\nevent: \(name)\ndata: \(json)\n\n"
        for subscriber in current where !subscriber.offer(message) {
            dropped.add(1, ordering: .relaxed)
        }
    }
}

