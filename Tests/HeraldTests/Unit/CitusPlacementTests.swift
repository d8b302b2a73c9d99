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

@Suite("Citus layout")
struct CitusLayoutTests {
    let node = CitusNode(group: 2, host: "10.0.0.7", port: 5433)

    @Test func aNodesURLIsTheCoordinatorsWithTheNodesHostAndPort() {
        #expect(
            CitusLayout.url(of: node, coordinatorURL: "postgresql://herald:s3cret@coord:5432/app?sslmode=require")
                == "postgresql://herald:s3cret@10.0.0.7:5433/app?sslmode=require")
        // Parameters in the query would override the authority: they are dropped.
        #expect(
            CitusLayout.url(of: node, coordinatorURL: "postgres://u@coord/app?host=/var/run/postgresql&port=6432")
                == "postgres://u@10.0.0.7:5433/app")
        // A keyword string: the last value of a keyword wins.
        #expect(
            CitusLayout.url(of: node, coordinatorURL: "host=coord port=5432 dbname=app user=u")
                == "host=coord port=5432 dbname=app user=u host='10.0.0.7' port=5433")
    }

    @Test func eventIDsAreUniqueAcrossNodesAndNameTheirNode() {
        #expect(node.eventIDFloor == 2 << 48)
        #expect(CitusNode(group: 1, host: "h", port: 1).eventIDFloor > 0)
        #expect((node.eventIDFloor + 12_345) >> CitusLayout.eventIDGroupShift == 2)
        #expect(node.sourceName(coordinator: "default") == "default:node2")
    }

    @Test func nodeSourcesCarryTheCoordinatorsPushedEventTriggersOnly() throws {
        var source = SourceConfig(name: "main", url: "postgresql://u@coord:5432/app")
        let pushed = TriggerConfig(
            name: "orders_changes", table: TableName(schema: "public", name: "orders"), webhook: "http://127.0.0.1:1/x")
        var pulled = pushed
        pulled.name = "pulled"
        pulled.pullConsumer = "billing"
        var cron = pushed
        cron.name = "nightly"
        cron.schedule = ScheduledDelivery(kind: .cron(try CronSchedule("0 0 * * *")))
        source.triggers = [pushed, pulled, cron]
        let nodes = CitusSources.nodeSources(
            of: source, layout: CitusLayout(localGroup: 0, nodes: [node, CitusNode(group: 3, host: "n3", port: 5432)]))
        #expect(nodes.map(\.name) == ["main:node2", "main:node3"])
        #expect(nodes.allSatisfy { $0.triggers.map(\.name) == ["orders_changes"] })
        #expect(nodes[0].database.url == "postgresql://u@10.0.0.7:5433/app")
        #expect(nodes[0].citusNode?.coordinatorSource == "main")
        #expect(nodes[1].citusNode?.group == 3)
    }

    @Test func onlyReferenceTablesAreRefused() {
        let trigger = TriggerConfig(
            name: "plans_changes", table: TableName(schema: "public", name: "plans"), webhook: "http://127.0.0.1:1/x")
        #expect(CitusPlacement.reference.refusal(trigger: trigger)?.contains("captured once per node") == true)
        #expect(CitusPlacement.distributed(method: "hash", column: "tenant_id", shards: 32).refusal(trigger: trigger) == nil)
        #expect(CitusPlacement.citusLocal.refusal(trigger: trigger) == nil)
        #expect(CitusPlacement.citusLocal.capturesOnShards && !CitusPlacement.reference.capturesOnShards)
        #expect(CitusPlacement.distributed(method: "hash", column: "tenant_id", shards: 32).description
            == "distributed (hash on tenant_id, 32 shards)")
    }
}
