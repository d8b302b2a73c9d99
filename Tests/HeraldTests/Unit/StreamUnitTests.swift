import Testing

@testable import Herald

@Suite("Stream cursors and paging")
struct StreamUnitTests {
    let earlier = StreamSnapshot(xmin: 100, xmax: 105, inProgress: [100, 103])
    let later = StreamSnapshot(xmin: 103, xmax: 110, inProgress: [103, 108])

    @Test func snapshotsReadPostgresTextAndTellVisibility() throws {
        let snapshot = try #require(StreamSnapshot(postgres: "100:105:100,103"))
        #expect(snapshot == earlier)
        #expect(snapshot.postgres == "100:105:100,103")
        #expect(StreamSnapshot(postgres: "7:7:")?.inProgress == [])
        #expect(snapshot.sees(99) && snapshot.sees(101) && snapshot.sees(104))
        #expect(!snapshot.sees(100) && !snapshot.sees(103) && !snapshot.sees(105))
        #expect(snapshot.oldestUnseen == 100)
        #expect(StreamSnapshot(xmin: 5, xmax: 9, inProgress: []).oldestUnseen == 9)
        #expect(StreamSnapshot(postgres: "1:2") == nil)
        #expect(StreamSnapshot(postgres: "a:2:") == nil)
        #expect(earlier.isCovered(by: later))
        // A transaction running in `earlier`'s successor that `earlier` saw committed: not a later snapshot.
        #expect(!StreamSnapshot(xmin: 100, xmax: 105, inProgress: [100]).isCovered(by: later))
    }

    @Test func cursorsRoundTripThroughTheirUrlSafeText() throws {
        let closed = StreamCursor(served: earlier)
        #expect(closed.text == "1_100.105.100-103")
        #expect(StreamCursor(text: closed.text) == closed)
        let open = StreamCursor(served: earlier, window: .init(upTo: later, last: .init(xid: 106, id: 77)))
        #expect(open.text == "1_100.105.100-103_103.110.103-108_106.77")
        #expect(StreamCursor(text: open.text) == open)
        #expect(StreamCursor.origin.text == "1_0.0")
        #expect(open.text.allSatisfy { $0.isNumber || "._-".contains($0) })
        for bad in [
            "", "1", "2_0.0", "1_0", "1_5.4", "1_0.0_", "1_0.0_1.2", "1_0.0_0.9_x.1", "1_1.5.7", "1_1.5.", "12345",
            // The window's event must be one `served` had not seen and `upTo` had.
            "1_100.105_100.110_101.1", "1_100.105_100.110_112.1",
            // `upTo` must be the later snapshot.
            "1_100.110_100.105_106.1",
        ] {
            #expect(StreamCursor(text: bad) == nil, "\(bad)")
        }
    }

    @Test func theOldestUnservedTransactionDecidesWhetherDeletionsLostEvents() {
        let closed = StreamCursor(served: earlier)
        #expect(closed.oldestUnserved == 100)
        #expect(!closed.hasLost(horizon: nil))
        #expect(!closed.hasLost(horizon: 99))
        #expect(closed.hasLost(horizon: 100))
        let open = StreamCursor(served: earlier, window: .init(upTo: later, last: .init(xid: 106, id: 77)))
        // Transaction 103 still runs in `later`: unserved.
        #expect(open.oldestUnserved == 103)
        let pastIt = StreamCursor(
            served: earlier, window: .init(upTo: StreamSnapshot(xmin: 109, xmax: 110, inProgress: []), last: .init(xid: 106, id: 9)))
        #expect(pastIt.oldestUnserved == 106)
        #expect(!pastIt.hasLost(horizon: 105) && pastIt.hasLost(horizon: 106))
        let origin = StreamCursor.after(horizon: 41)
        #expect(!origin.hasLost(horizon: 41) && origin.hasLost(horizon: 42))
    }

    @Test func aFullPageLeavesItsWindowOpenAShortOneClosesIt() {
        let start = StreamCursor(served: earlier)
        let positions: [StreamCursor.Position] = [.init(xid: 103, id: 5), .init(xid: 106, id: 9)]
        let full = StreamPaging.advance(from: start, page: .init(snapshot: later, positions: positions), limit: 2)
        #expect(!full.windowClosed)
        #expect(full.cursors == positions.map { StreamCursor(served: earlier, window: .init(upTo: later, last: $0)) })
        #expect(full.next == full.cursors.last)

        let short = StreamPaging.advance(from: start, page: .init(snapshot: later, positions: positions), limit: 3)
        #expect(short.windowClosed)
        #expect(short.cursors.first == StreamCursor(served: earlier, window: .init(upTo: later, last: positions[0])))
        // The last event's cursor is the closed window: resuming there reads the next one.
        #expect(short.cursors.last == StreamCursor(served: later))
        #expect(short.next == StreamCursor(served: later))

        let empty = StreamPaging.advance(from: start, page: .init(snapshot: later, positions: []), limit: 3)
        #expect(empty.cursors.isEmpty && empty.windowClosed && empty.next == StreamCursor(served: later))
    }

    @Test func requestsParseLastEventIDFirstAndNameBadParameters() throws {
        let cursor = StreamCursor(served: earlier)
        let request = try StreamAPI.parse(
            trigger: "t", query: ["after": "now", "batch": "5"], lastEventID: cursor.text, accept: nil)
        #expect(request.start == .cursor(cursor) && request.batch == 5 && !request.json)
        #expect(try StreamAPI.parse(trigger: "t", query: ["after": "now"], lastEventID: nil, accept: nil).start == .now)
        #expect(try StreamAPI.parse(trigger: "t", query: [:], lastEventID: "", accept: nil).start == .oldest)
        #expect(try StreamAPI.parse(trigger: "t", query: [:], lastEventID: nil, accept: "application/json").json)
        #expect(try !StreamAPI.parse(trigger: "t", query: [:], lastEventID: nil, accept: "text/event-stream, application/json").json)
        #expect(try StreamAPI.parse(trigger: "t", query: ["format": "json", "wait_ms": "300"], lastEventID: nil, accept: nil).waitMilliseconds == 300)
        for (query, words) in [
            (["batch": "0"], "batch"), (["batch": "1001"], "batch"), (["wait_ms": "-1"], "wait_ms"),
            (["format": "xml"], "format"), (["after": "nope"], "not a stream cursor"), (["limit": "3"], "'limit'"),
        ] {
            #expect(throws: ConsumerProtocol.BadRequest.self) {
                try StreamAPI.parse(trigger: "t", query: query, lastEventID: nil, accept: nil)
            }
            do {
                _ = try StreamAPI.parse(trigger: "t", query: query, lastEventID: nil, accept: nil)
            } catch {
                #expect(error.description.contains(words), "\(error.description)")
            }
        }
    }
}
