/// The claimed jobs waiting for a transfer slot, one queue per host, and the slots in use:
/// the part of ``FlowControl`` the delivery threads act on. Pure and clock-free; every call
/// returns what it took out, and the caller decides what that means for claimers and gates.
struct HostQueues<Job: FlowJob> {
    /// What a host can take, for claim planning.
    struct Room {
        /// Jobs that may still be claimed for the host: its running and queued jobs below
        /// the per-host limit plus its prefetch.
        var free: Int
        /// Fewer than half its prefetch queued: worth claiming for.
        var hungry: Bool
        var triggers: [TriggerRef]
    }

    private struct Host {
        var queue: [Job] = []
        var head = 0
        var inFlight = 0
        /// How many jobs may wait for this host beyond the ones running (see `prefetch`).
        var prefetch: Int
        var triggers: [TriggerRef]

        var queued: Int { queue.count - head }

        mutating func popFirst() -> Job {
            let job = queue[head]
            head += 1
            if head == queue.count {
                queue.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 64 && head * 2 >= queue.count {
                queue.removeFirst(head)
                head = 0
            }
            return job
        }

        /// Removes the queued jobs `shouldRemove` picks, keeping the others in order.
        mutating func removeQueued(where shouldRemove: (Job) -> Bool) -> [Job] {
            var kept: [Job] = []
            var removed: [Job] = []
            for job in queue[head...] {
                if shouldRemove(job) { removed.append(job) } else { kept.append(job) }
            }
            queue = kept
            head = 0
            return removed
        }
    }

    private var hosts: [String: Host]
    private var order: [String]
    /// Rotates which host goes first when starting jobs.
    private var rotation = 0
    /// The earliest start deadline of a queued job (or earlier: it is recomputed only when passed).
    private(set) var earliestDeadline: ContinuousClock.Instant?
    private(set) var queuedTotal = 0
    private(set) var inFlightTotal = 0
    let perHostLimit: Int
    let poolSize: Int

    init(routes: [FlowRoute], poolSize: Int, perHostLimit: Int, prefetch: (FlowRoute) -> Int) {
        hosts = [:]
        order = []
        self.poolSize = poolSize
        self.perHostLimit = min(perHostLimit, poolSize)
        add(routes, prefetch: prefetch)
    }

    /// Routes of a source found while running (a Citus worker node): their hosts' queues
    /// are shared with the routes already there, as at the start.
    mutating func add(_ routes: [FlowRoute], prefetch: (FlowRoute) -> Int) {
        for route in routes {
            let routePrefetch = prefetch(route)
            if var host = hosts[route.hostKey] {
                host.prefetch = min(host.prefetch, routePrefetch)
                host.triggers.append(route.ref)
                hosts[route.hostKey] = host
            } else {
                hosts[route.hostKey] = Host(prefetch: routePrefetch, triggers: [route.ref])
            }
        }
        order = hosts.keys.sorted()
    }

    func room(host key: String) -> Room? {
        guard let host = hosts[key] else { return nil }
        return Room(
            free: perHostLimit + host.prefetch - host.inFlight - host.queued,
            hungry: host.queued < max(1, host.prefetch / 2), triggers: host.triggers)
    }

    mutating func enqueue(_ job: Job) {
        enqueue(CollectionOfOne(job))
    }

    /// Queues jobs of one host, in order.
    mutating func enqueue(_ jobs: some Collection<Job>) {
        guard let first = jobs.first else { return }
        if let index = hosts.index(forKey: first.hostKey) {
            hosts.values[index].queue.append(contentsOf: jobs)
        } else {
            // A host no route named (not expected): queue it with the smallest prefetch.
            var host = Host(prefetch: 1, triggers: [])
            host.queue.append(contentsOf: jobs)
            hosts[first.hostKey] = host
            order.append(first.hostKey)
        }
        queuedTotal += jobs.count
        for job in jobs where earliestDeadline.map({ job.startDeadline < $0 }) ?? true {
            earliestDeadline = job.startDeadline
        }
    }

    /// Starts up to `budget` queued jobs (never more than the pool's free slots), round-robin
    /// over hosts within the per-host limit.
    mutating func start(budget requested: Int) -> [Job] {
        var budget = min(requested, poolSize - inFlightTotal)
        guard budget > 0, queuedTotal > 0 else { return [] }
        var started: [Job] = []
        started.reserveCapacity(budget)
        let count = order.count
        // Each host found once per call, then reached by index: a host key is a URL, and
        // hashing it three times per job showed in the delivery thread's profile.
        let indices = (0..<count).map { hosts.index(forKey: order[($0 + rotation) % count]) }
        var progressed = true
        while budget > 0 && progressed {
            progressed = false
            for case let index? in indices where budget > 0 {
                // Mutated in place: a copy of the host taken out of the dictionary would
                // share its queue, so popping from it would copy the whole queue per job.
                guard hosts.values[index].queued > 0, hosts.values[index].inFlight < perHostLimit else { continue }
                started.append(hosts.values[index].popFirst())
                hosts.values[index].inFlight += 1
                budget -= 1
                progressed = true
            }
        }
        queuedTotal -= started.count
        inFlightTotal += started.count
        if !started.isEmpty { rotation &+= 1 }
        return started
    }

    /// Removes every queued job whose start deadline passed by `now`.
    mutating func removeExpired(now: ContinuousClock.Instant) -> [Job] {
        guard let deadline = earliestDeadline, now > deadline else { return [] }
        var expired: [Job] = []
        var earliest: ContinuousClock.Instant?
        for key in order where (hosts[key]?.queued ?? 0) > 0 {
            expired += hosts[key]?.removeQueued { $0.startDeadline < now } ?? []
            for job in hosts[key]?.queue ?? [] where earliest.map({ job.startDeadline < $0 }) ?? true {
                earliest = job.startDeadline
            }
        }
        queuedTotal -= expired.count
        earliestDeadline = earliest
        return expired
    }

    /// Removes the queued jobs of one trigger (its breaker opened, it was disabled).
    mutating func removeQueued(of trigger: TriggerRef, host key: String) -> [Job] {
        guard (hosts[key]?.queued ?? 0) > 0 else { return [] }
        let removed = hosts[key]?.removeQueued { $0.triggerRef == trigger } ?? []
        queuedTotal -= removed.count
        return removed
    }

    /// Removes every queued job (shutdown).
    mutating func removeAll() -> [Job] {
        var removed: [Job] = []
        for key in order where (hosts[key]?.queued ?? 0) > 0 {
            removed += hosts[key]?.removeQueued { _ in true } ?? []
        }
        queuedTotal -= removed.count
        earliestDeadline = nil
        return removed
    }

    /// A transfer to the host ended: its slot is free.
    mutating func release(host key: String, count: Int = 1) {
        // Through the index, as in `start`: the optional-yielding accessor (`hosts[key]?.…`)
        // allocates its frame for a value this size.
        if let index = hosts.index(forKey: key) { hosts.values[index].inFlight -= count }
        inFlightTotal -= count
    }

    /// Whether a thread with `freeSlots` free slots could start a job now.
    func hasStartable(freeSlots: Int) -> Bool {
        guard freeSlots > 0, queuedTotal > 0, inFlightTotal < poolSize else { return false }
        return hosts.values.contains { $0.queued > 0 && $0.inFlight < perHostLimit }
    }

    func queued(host key: String) -> Int { hosts[key]?.queued ?? 0 }

    func inFlight(host key: String) -> Int { hosts[key]?.inFlight ?? 0 }
}
