import Testing

@testable import Herald

@Suite("Citus placement")
struct CitusPlacementTests {
    @Test func pgDistPartitionCodesAreClassified() {
        #expect(CitusPlacement.classify(method: "h", replication: "s", colocation: 3, column: "tenant_id", shards: 32)
            == .distributed(method: "hash", column: "tenant_id", shards: 32))
        #expect(CitusPlacement.classify(method: "n", replication: "t", colocation: 1, column: nil, shards: 1) == .reference)
        #expect(CitusPlacement.classify(method: "n", replication: "s", colocation: 0, column: nil, shards: 1) == .citusLocal)
        #expect(CitusPlacement.classify(method: "n", replication: "s", colocation: 7, column: nil, shards: 1)
            == .distributed(method: "single shard", column: nil, shards: 1))
        #expect(CitusPlacement.classify(method: "r", replication: "s", colocation: 2, column: "day", shards: 4)
            == .distributed(method: "range", column: "day", shards: 4))
    }
}
