-- Herald schema version 19: the Citus worker nodes Herald has installed itself on.
--
-- Kept on the coordinator (install-triggers and the worker's node watch write it). A node
-- taken out of the cluster (citus_remove_node) leaves pg_dist_node, but events captured in
-- its log before its shards moved away may still be pending: workers keep claiming from a
-- node listed here until its log has none, even across restarts, and then forget it. An
-- operator who retires a node whose log cannot be reached any more deletes its row.
CREATE TABLE herald.citus_nodes (
    node_group  integer     PRIMARY KEY,
    host        text        NOT NULL,
    port        integer     NOT NULL,
    seen_at     timestamptz NOT NULL DEFAULT now()
);
