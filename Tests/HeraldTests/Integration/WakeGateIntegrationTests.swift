import Foundation
import Testing

@testable import Herald

/// The wake gate with a real worker: writers stop sending NOTIFY while the worker drains a
/// backlog, nothing they write is left behind, and once the worker waits again the next
/// write wakes it at once (sql/017_wake_gate.sql, ``WakeGate``).
@Suite("Wake gate with a worker", .enabled(if: TestEnvironment.integrationEnabled))
struct WakeGateIntegrationTests {
    /// Wake-gate slots held in SHARE mode by the worker's claimer session.
    func claimerSlots(_ connection: PGConnection) throws -> Int {
        try connection.query(
            """
            SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
            WHERE l.locktype = 'advisory' AND l.classid = 1213353028 AND l.mode = 'ShareLock' AND l.granted
              AND a.application_name = 'herald-claimer' AND a.datname = current_database()
            """
        ).decode(Int.self, row: 0, column: 0)
    }

    func lockDump(_ connection: PGConnection) throws -> String {
        let result = try connection.query(
            """
            SELECT a.application_name || ' ' || l.mode || ' ' || l.objid || ' ' || l.granted FROM pg_locks l
            JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' AND a.datname = current_database() ORDER BY 1
            """)
        return (0..<result.rowCount).map { result[$0, 0] ?? "" }.joined(separator: "; ")
    }

    @Test func writersStaySilentWhileTheWorkerDrainsAndWakeItOnceItWaits() throws {
        let receiver = try Receiver()
        // A 60 s poll: only a NOTIFY or the gate's own claims can explain a quick delivery.
        let setup = try WorkerFixture(
            webhook: receiver.url("/sleep/20"),
            worker: "fetch_interval_ms: 60000, http_pool_size: 10, fetch_batch_size: 10")
        let listener = try setup.database.connect()
        try listener.listen("herald_events")
        try setup.insert(1000)
        let worker = try WorkerProcess(configPath: setup.configPath)
        defer { _ = worker.terminate() }

        // Draining (10 at a time, 20 ms each): the claimer holds no slot…
        #expect(try eventually { try receiver.stats().count >= 50 }, "\(worker.log)")
        let slotsWhileDraining = try claimerSlots(setup.connection)
        let dump = try lockDump(setup.connection)
        #expect(slotsWhileDraining == 0, "\(dump)")
        // …so 100 single-row transactions written meanwhile send (almost) no NOTIFY.
        var heard = 0
        for _ in 0..<100 {
            try setup.insert(1)
            heard += try listener.waitForNotifications(timeoutMilliseconds: 0).count
        }
        let pendingAfterWrites = try setup.count("status = 'pending'")
        #expect(pendingAfterWrites > 0, "the backlog drained before the writes ended: the case is not exercised")

        // Every event is delivered, those written unnotified included, long before any poll.
        #expect(try eventually(timeout: 40) { try setup.count("status = 'delivered'") == 1100 }, "\(worker.log)")
        heard += try listener.waitForNotifications(timeoutMilliseconds: 100).count
        #expect(heard <= 5, "writers notified \(heard) times while the worker was draining")

        // Drained, it waits again: the gate is armed…
        #expect(try eventually { try claimerSlots(setup.connection) == 64 })
        // …and the next write wakes it well inside the 60 s poll.
        let started = Date()
        try setup.insert(1)
        #expect(try eventually(timeout: 10) { try setup.count("status = 'delivered'") == 1101 })
        #expect(Date().timeIntervalSince(started) < 2)
        #expect(try listener.waitForNotifications(timeoutMilliseconds: 200).count + heard >= 1)
        #expect(Set(try receiver.requests().compactMap { $0.header("webhook-id") }).count == 1101)
        #expect(worker.terminate() == 0)
    }

    @Test func aWriterCommittingAsTheWorkerStopsDrainingIsNeverStranded() throws {
        // Transactions that hold their slot open (their wake check run early, as a slow
        // commit would hold it) while the worker finishes its backlog: its arm is refused
        // until they commit, and the claim after the arm delivers them; the poll is 60 s.
        let receiver = try Receiver()
        let setup = try WorkerFixture(
            webhook: receiver.url("/ok"), worker: "fetch_interval_ms: 60000, http_pool_size: 10, fetch_batch_size: 10")
        try setup.insert(300)
        let writers = try (0..<3).map { _ in try setup.database.connect() }
        for writer in writers {
            try writer.execute(
                script: "BEGIN; SET CONSTRAINTS herald.herald_wake IMMEDIATE; INSERT INTO items (name) VALUES ('late')")
        }
        let worker = try WorkerProcess(configPath: setup.configPath)
        defer { _ = worker.terminate() }
        #expect(try eventually { try setup.count("status = 'delivered'") == 300 }, "\(worker.log)")
        Thread.sleep(forTimeInterval: 0.5)
        // The worker cannot arm while they are open: it holds no slot and keeps trying.
        let slotsWhileDraining = try claimerSlots(setup.connection)
        let dump = try lockDump(setup.connection)
        #expect(slotsWhileDraining == 0, "\(dump)")
        let committed = Date()
        for writer in writers { try writer.execute(script: "COMMIT") }
        #expect(try eventually(timeout: 10) { try setup.count("status = 'delivered'") == 303 }, "\(worker.log)")
        #expect(Date().timeIntervalSince(committed) < 2)
        #expect(try eventually { try claimerSlots(setup.connection) == 64 })
        #expect(worker.terminate() == 0)
    }

    @Test func aQuietTriggersEventIsFoundWhileAnotherDrainsUnannounced() throws {
        // Host A's backlog keeps the gate released (claims come back full, A's slots stay
        // busy), so writers to trigger B send no NOTIFY: the released claimer's looks at every
        // trigger must find B's events anyway, long before the 60 s poll.
        let slow = try Receiver()
        let fast = try Receiver()
        let setup = try WorkerFixture(
            webhook: slow.url("/sleep/200"),
            worker: "fetch_interval_ms: 60000, http_pool_size: 20, http_per_host_limit: 4, fetch_batch_size: 10",
            extraTrigger: WorkerFixture.otherTrigger(webhook: fast.url("/fast")),
            beforeInstall: WorkerFixture.createOtherTable)
        try setup.insert(400)
        let worker = try WorkerProcess(configPath: setup.configPath)
        defer { _ = worker.terminate() }
        #expect(try eventually { try slow.stats().count >= 8 }, "\(worker.log)")
        var latencies: [Double] = []
        for round in 1...10 {
            #expect(try claimerSlots(setup.connection) == 0, "the gate is held while A's backlog lasts")
            let written = Date()
            try setup.insertOther(1)
            #expect(try eventually(timeout: 10) { try fast.stats().count == round }, "\(worker.log)")
            latencies.append(Date().timeIntervalSince(written))
        }
        // Looks every 25 ms: generous bounds for a loaded test machine, far below the poll.
        #expect(latencies.max() ?? 99 < 1.0, "\(latencies)")
        #expect(try slow.stats().count < 400, "A's backlog drained before B's writes ended: the case is not exercised")
        #expect(worker.terminate() == 0)
    }
}
