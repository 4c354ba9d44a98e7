// Package agent is the executor of pigwf's HA agent: the loop that feeds
// haagent.Decide and carries out its decisions, the fence timer, the
// REST API, the local config file and the supervisor. The pg-ha-agent
// binary (ha-agent/cmd/pg-ha-agent) is Main. Process control of
// PostgreSQL is package pgctl; the etcd store is package dcs. Every rule
// the executor judges by (whose lease the leader key carries, staleness,
// failsafe confirmations, WAL positions, synchronous standbys) is package
// haagent's, the same definition Decide uses.
//
// # Where things are
//
//   - agent.go: the Agent (its fields grouped by concern) and New;
//     run.go: Run, the watch, loading the keys, wake-ups, shutdown;
//     timing.go: the DCS config key and the timing in force.
//   - cycle.go: one observe → decide → act iteration and the bookkeeping
//     after it; cache.go: this agent's copy of the keys.
//   - execute.go: carrying out Decide's action; lease.go: acquire, renew,
//     release and the leader record; promote.go: promotion and demotion;
//     lifecycle.go: start, follow, pg_rewind, clone; async.go: long actions
//     run off the loop.
//   - syncstandby.go: synchronous_standby_names and the sync key; slots.go:
//     replication slots; history.go: the history key.
//   - fencer.go: the fence timer and write gate; failsafe.go: asking for
//     and giving failsafe confirmations; probes.go: live probes of the
//     other members; publish.go: this member's record in the DCS.
//   - api.go: the REST API's routes; health.go: the health checks (Patroni's
//     semantics, one rule each); patroni.go: GET /patroni (the member's
//     status, also every health check's body) and /history; cluster.go:
//     GET /cluster (haagent.ClusterStatus); metrics.go: /metrics (pigwf's
//     and Patroni's metrics, client_golang); apiauth.go: who may
//     call the mutating endpoints (client certificate, api.auth,
//     api.allowlist); apiserve.go: serving the API over TLS and the
//     agent's client of the other members' APIs.
//   - params.go: the cluster's dynamic parameters (the config key's
//     postgresql.parameters) kept in force by a writer off the loop;
//     reload.go: POST /reload and GET /settings; restart.go: POST /restart
//     (a planned restart of a replica).
//   - config.go: the local config file; main.go: the pg-ha-agent commands
//     and the supervisor; endpoints.go: etcd endpoint health; clock.go:
//     CLOCK_MONOTONIC_RAW; logging.go: log rate limits.
//
// # Running it
//
//	pg-ha-agent [run] --config /etc/pigwf/ha-agent.yml    # as the postgres OS user
//	pg-ha-agent supervise --config /etc/pigwf/ha-agent.yml
//	pg-ha-agent check-config --config /etc/pigwf/ha-agent.yml
//
// "supervise" runs the agent as its child and restarts it 100 ms after it
// dies (backing off to 5 s while it keeps dying within seconds); it does
// not manage PostgreSQL, but until the restart it SIGKILLs whatever the
// dead agent's process tree left re-parented to it (a postmaster's
// backends notice its death only at their next wait). It is what the
// lab's boot scripts
// (/etc/pigwf/boot.d/) start on nodes without systemd. The supervisor is a
// child subreaper, so the postmaster killed with a dead agent (and that
// postmaster's backends) are reaped at once: PostgreSQL refuses to start
// while the pid in postmaster.pid still exists, even as a zombie. Under
// systemd, run the agent directly instead (systemd restarts and reaps):
//
//	[Unit]
//	Description=pigwf HA agent
//	After=network-online.target
//	[Service]
//	User=postgres
//	Group=postgres
//	ExecStart=/usr/local/bin/pg-ha-agent run --config /etc/pigwf/ha-agent.yml
//	Restart=always
//	RestartSec=100ms
//	# KillMode=control-group (the default): when the agent dies, systemd kills
//	# what it left in the unit's cgroup (orphaned backends) before restarting.
//	# A stop is a planned switchover: the agent stops PostgreSQL (fast) and
//	# releases the lock.
//	TimeoutStopSec=90
//	[Install]
//	WantedBy=multi-user.target
//
// Only one agent runs per PostgreSQL instance: it holds an flock on
// <socket_dir>/.pigwf-ha-agent.<port>.lock.
//
// # Local config (the PgClusterCreate contract)
//
// YAML with exactly the keys of LocalConfig (cluster, name, prefix,
// etcd.endpoints, api.listen, api.url, postgres.{bin_dir, data_dir, host,
// port, socket_dir, replication_user, log_file}, tags.{nofailover,
// nosync, noloadbalance, and custom tags name: value as Patroni's tags},
// log_file). Unknown keys are refused (so is any password:
// the replication password belongs in ~postgres/.pgpass, mode 0600, which
// libpq reads through passfile=). Every error names the file, the field
// and the fix. Cluster-wide settings, including all timing, are the DCS
// config key (haagent.Config), validated with Config.Validate: an invalid
// key is refused and the last valid one stays in force; an agent that has
// never seen a valid one does not act at all. When the timing changes,
// for two lease lengths the agent uses the earlier of the old and new
// fence deadlines as holder and the later staleness as observer.
//
// # Bootstrap adoption
//
// PgClusterCreate initdb's the primary, clones the replicas with
// pg_basebackup, leaves every PostgreSQL stopped, and writes the config
// key and initialize = {claimed_by, sysid} (dcs.Store.RegisterCluster,
// create-if-absent) before any agent starts. The member named in
// claimed_by whose data directory has that system identifier takes the
// first lock while the cluster was never led (no history key), and only
// then starts PostgreSQL as a primary; the others wait for it, then start
// as its standbys. A member with an empty data directory clones itself
// from the leader (pg_basebackup). The holder writes the history key
// (its timeline history), whose presence means "led before".
//
// # The loop
//
// One goroutine: load the cluster's keys once and then follow a watch
// (changes of the leader, failover, pause, sync, config, initialize or
// history keys trigger a cycle at once; member reports and our own
// renewals do not); a tick every loop_interval_ms; a postmaster exit or a
// finished long action also triggers a cycle. Each cycle observes
// PostgreSQL over the unix socket (one multi-statement query), builds
// the ClusterView (every record timed by when THIS agent saw it change,
// on CLOCK_MONOTONIC_RAW), probes the other members' /probe when the
// leader is stale or absent, asks Decide, logs the reason (a repeated
// reason at most every 10 s), acts, and publishes the member record
// (with a sequence number) in the background. Renewals stamp the send
// time before sending and extend the lease only from a successful CAS
// (or from seeing their own renewal applied after a lost response). Long
// actions (promote, pg_rewind, clone, re-clone, initdb, the switchover
// shutdown) run asynchronously while the holder keeps renewing (Busy).
// Multi-step changes (acquire → stop WAL receiver → promote) run their
// next step at once instead of at the next tick.
//
// # Fencing
//
// The fencer is armed at the holder deadline of every successful renewal
// (sent + L(1−ε) − m_f) and fences from its own goroutine when the
// deadline passes, however stuck the loop is. Go timers run on
// CLOCK_MONOTONIC, so it sleeps 1/16 short and re-checks the raw clock.
// The same mutex is the write gate: PostgreSQL is started as a primary
// or promoted only inside it and only before the deadline, and never
// while a fence runs. pgctl.Controller.Fence SIGSTOPs the postmaster,
// SIGKILLs its children (backends call setsid(), so a process-group kill
// would miss them), the postmaster, and anything else whose working
// directory is the data directory, then waits until all are dead.
// Measured here (2 cores, 6 backends committing): the postmaster and all
// its children have SIGKILL pending 0.2–1.3 ms after the fence starts
// (none runs user code again, so none starts an acknowledgement); all are
// dead after 15–35 ms (exit waits for fsyncs in flight). In the isolation
// test the timer fired 1.2 ms after the deadline.
//
// PostgreSQL dies with the agent: see pgctl (postmaster forked as the
// agent's direct child, Setpgid, Pdeathsig=SIGKILL, from a goroutine that
// locked its OS thread and never returns). The restarted agent takes its
// leader key back by CAS if nobody else took it, and restarts PostgreSQL
// in place (crash recovery) within agent_restart_budget_ms, so killing
// the agent on the primary does not fail over. A PostgreSQL crash with
// the agent alive releases the lock at once (crash recovery time is not
// estimated), so a synchronous standby takes over without waiting for
// the lock to go stale.
//
// # Recovery settings
//
// See pgctl: the agent owns primary_conninfo, primary_slot_name and (on a
// primary) synchronous_standby_names in postgresql.auto.conf, and the
// standby.signal file; ALTER SYSTEM + reload while PostgreSQL runs, a
// line-preserving rewrite of those keys only while it is stopped. Other
// settings (pgBackRest's restore_command, recovery targets) are never
// touched. Slots: the holder keeps a physical slot per other member
// (name with non-alphanumerics → '_'), created already before its
// promotion; slots of members gone from the DCS for 30 minutes are
// dropped; a standby without the lock drops member slots.
//
// # Synchronous mode
//
// Before promoting, the new leader writes sync = {leader: me, standbys:
// []} (the old key names the old leader, who lacks what the new one will
// acknowledge) and sets synchronous_standby_names to
// FIRST 1 ("pigwf_no_sync_standby") in strict mode (commits wait) or to
// empty. A standby is added to synchronous_standby_names first, and to
// the sync key only once PostgreSQL reports it sync AND it flushed past
// the primary's flush position seen at that moment; it is removed from
// the key first. Only a member of the sync key can be promoted
// automatically, in two phases: it stops its WAL receiver (the old
// primary can get no more acknowledgements from it), then asks
// PostgreSQL to promote. On that request the startup process replays
// every record already in pg_wal before it ends recovery, so everything
// received is replayed first; the agent does not wait for replayed >=
// received itself, because the received LSN can end inside a record the
// dead primary never finished sending, which replay never reaches.
//
// A holder whose promotion did not complete (standby.signal still there)
// and whose PostgreSQL went down restarts it as a standby without
// upstream and promotes again; never as a primary, whose crash recovery
// would follow only the control file's old timeline and drop the WAL
// received on the newer one (acknowledged commits).
//
// # etcd endpoints
//
// The etcd client sends requests round-robin to every configured member.
// A member whose node died without closing connections swallows requests
// until their timeout, and grpc's keepalive (at least 10 s) is too slow to
// drop it. Each agent asks every member for its status every loop interval
// over a one-endpoint client and keeps the shared client's endpoints to
// those that answer and have an etcd leader (all of them if none does).
// Members should run with --pre-vote=true, so a member that rejoins does
// not force an etcd election.
//
// # REST API (Patroni-compatible health checks)
//
// GET, HEAD and OPTIONS, 200 or 503, as Patroni's api.py decides (health.go
// has each rule once). / (a bare HAProxy "option httpchk" sends OPTIONS /),
// /primary, /leader, /master, /read-write: 200 only while this member holds
// the lock, PostgreSQL runs as a primary, the fence deadline (the lease's,
// or failsafe's) has not passed at the instant of the request, and no
// planned stop has begun: a switchover's demotion and the agent's shutdown
// turn it to 503 before PostgreSQL's checkpoint and stop, so a load
// balancer drains the member first. /replica: a running standby not tagged
// noloadbalance; ?lag=<bytes|16MB> bounds its replay behind the leader's
// known position, ?replication_state=streaming its WAL receiver's state,
// ?tag_<name>=<value> its tags (all must match; every check but the
// leader's takes them). /read-only: primary, or as /replica. /sync
// (/synchronous), /quorum: the PRIMARY's pg_stat_replication says this
// member is sync (quorum) (the primary's agent publishes it in its member
// record every loop; a record older than member_report_fresh_ms does not
// count), and as /replica; /async (/asynchronous): neither (while the
// primary's report is stale, the sync key must not name it), and as
// /replica; /read-only-sync, /read-only-quorum: primary or as /sync
// (/quorum). /standby-leader: never (no standby clusters). /health:
// PostgreSQL running. /liveness: the loop's last cycle began within the
// leader timeout (twice it on a standby), or paused. /readiness: the
// leader, or a streaming standby within ?lag= (default
// maximum_lag_on_failover) of replayed WAL (?mode=write: received).
// Unknown paths: 404.
//
// GET /patroni: the member in Patroni's shape (state, role,
// server_version, xlog, timeline, replication, tags, dcs_last_seen,
// patroni{version, scope, name}, ...) plus pigwf's name, cluster, leader,
// last_reason, wal_position; every health check answers with it. GET
// /cluster: {cluster, scope, paused, pause, leader, timeline,
// synchronous_standby_names, sync_source, members: [{name, host, port,
// role: leader|sync_standby|replica, state, timeline, lag_bytes, lag
// (bytes or "unknown"), api_url, tags, note}], scheduled_switchover}; on
// the leader the roles and streaming states come from pg_stat_replication
// read during the request (sync_source "live: ..."), elsewhere from what
// the leader last published (sync_source "dcs: ... N ms ago"). GET
// /history: [[timeline, lsn, reason, timestamp, new_leader], ...] from the
// history key. GET /metrics: pigwf_ha_* and Patroni's patroni_* (labels
// scope, name). GET /probe: live state for racing members. POST
// /switchover {leader, candidate, scheduled_at} and POST /failover
// {candidate} write the DCS failover key (202). POST /failsafe {leader}:
// failsafe confirmation between members. POST /restart {restart_pending,
// started_before} restarts a replica's PostgreSQL and answers once it runs
// again (409 on the leader: switch over first); POST /reload rewrites the
// dynamic parameters and reloads; GET /settings is pg_settings, which
// `pigwf config set` checks values against.
//
// # Dynamic parameters and pending restarts
//
// The config key's postgresql.parameters are the cluster's PostgreSQL
// settings (`pigwf config`). A writer off the loop renders them to
// pigwf.dynamic.conf in the data directory (postgresql.conf includes it
// last), after checking every value against this server's pg_settings
// (PostgreSQL refuses to start with a value it cannot parse, so such a
// value never reaches the file: the member's note says why), reloads, and
// reads pg_settings.pending_restart: the settings waiting for a restart are
// in the member record, /patroni, /cluster and patroni_pending_restart. It
// re-checks every 2 s, which also restores a file a clone or a person
// changed. A planned restart (POST /restart) marks the member
// "restarting", which no leader counts as a synchronous standby, waits up
// to 3 s for the leader to name another, stops PostgreSQL fast, and lets
// the loop start it again as a replica.
//
// # etcd unreachable
//
// Without failsafe_mode the holder fences at its deadline. With it, the
// holder asks every member of the failsafe key over POST /failsafe each
// loop; a confirmation is a promise not to take the lock for
// L(1+ε)+m_p, timed on the member's clock, and extends the holder's fence
// timer to (oldest confirmation's send time) + L(1−ε) − m_f. One member
// missing, and the holder fences within one lease.
package agent
